package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code ref} and {@code commit_sha} against real git over smart HTTP on 127.0.0.1: the checkout is
 * a detached HEAD at exactly the ref's tip or the commit asked for. Each test prints how long its
 * path took ({@code [timing] ...}).
 *
 * <p>Two servers serve the same repositories: {@code git http-backend} itself, which sends a
 * commit by id ({@code uploadpack.allowAnySHA1InWant} is on in the served repository; JGit speaks
 * protocol v2, where git grants any want anyway), and {@link StrictWantFront} in front of it, which
 * refuses every want that is not a ref's tip, so that the stage must search the history instead.
 */
class GitExactCheckoutTest {
  private static final String TOKEN = "ghp_exact-checkout-test-token-0123456789";
  private static final String UNKNOWN = "0123456789abcdef0123456789abcdef01234567";

  @TempDir static Path repoRoot;
  private static GitRepos repos;
  private static GitHttpServer server;
  private static StrictWantFront strict;

  @TempDir Path workspace;

  @BeforeAll
  static void startServers() throws Exception {
    repos = new GitRepos(repoRoot);
    repos
        .repository("app.git")
        .file("Dockerfile", "FROM scratch\n")
        .file("version.txt", "0\n")
        .commit("initial")
        .file("version.txt", "1\n")
        .commit("version 1")
        .file("version.txt", "2\n")
        .commit("version 2")
        .file("version.txt", "3\n")
        .commit("version 3")
        .file("version.txt", "4\n")
        .commit("version 4")
        .branch("topic")
        .file("pr.txt", "pr 1\n")
        .commit("pr 1")
        .file("pr.txt", "pr 2\n")
        .commit("pr 2")
        .build();
    Path app = repos.path("app.git");
    // version 1, annotated, as releases are tagged.
    GitRepos.git(app, "tag", "-a", "-m", "release 1", "v1", "refs/heads/main~3");
    // What GitHub serves for a pull request: refs only under refs/pull/, no branch.
    GitRepos.git(app, "update-ref", "refs/pull/42/merge", "refs/heads/topic");
    GitRepos.git(app, "update-ref", "refs/pull/42/head", "refs/heads/topic");
    GitRepos.git(app, "update-ref", "-d", "refs/heads/topic");
    // The brief's switch for SHA-in-want; git http-backend reads it from the served repository.
    GitRepos.git(app, "config", "uploadpack.allowAnySHA1InWant", "true");
    // A ref of a tree: not something to build.
    GitRepos.git(app, "update-ref", "refs/trees/root", "refs/heads/main^{tree}");
    repos.repository("history.git").file("Dockerfile", "FROM scratch\n").commit("initial")
        .commits(300).build();
    repos.repository("inner.git").file("inner.txt", "inner\n").commit("inner").build();
    String inner = repos.revParse("inner.git", "HEAD");
    repos.repository("super.git").file("Dockerfile", "FROM scratch\n")
        .submodule("vendor/inner", "../inner.git", inner).commit("with a submodule")
        .file("more.txt", "more\n").commit("moved on").build();
    repos.repository("big.git").file("Dockerfile", "FROM scratch\n").commit("small")
        .randomFiles(1, 256 * 1024, 7).commit("big").file("after.txt", "x\n").commit("after")
        .build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
    strict = new StrictWantFront(server.port(), repos.root());
  }

  @AfterAll
  static void stopServers() throws IOException {
    strict.close();
    server.close();
  }

  private static String url(String server, String repository) {
    return server.equals("strict") ? strict.url(repository) : GitExactCheckoutTest.server.url(repository);
  }

  private RecordingJobContext context(String url, String branch, String ref, String commitSha) {
    JobRequestView request =
        JobRequestView.builder(url, "app:test").jobId("job-exact").branch(branch)
            .token(Optional.of(Secret.of(TOKEN))).commitSha(commitSha).ref(ref).build();
    return new RecordingJobContext(request, workspace);
  }

  /** Runs the stage and prints how long it took. */
  private long timed(String what, RecordingJobContext ctx, String config) throws Exception {
    long start = System.nanoTime();
    try {
      run(stage(config), ctx);
      return (System.nanoTime() - start) / 1_000_000;
    } finally {
      System.out.printf("[timing] %s: %d ms%n", what, (System.nanoTime() - start) / 1_000_000);
    }
  }

  private StageException timedFailure(String what, RecordingJobContext ctx) {
    long start = System.nanoTime();
    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));
    System.out.printf(
        "[timing] %s: %d ms (%s)%n", what, (System.nanoTime() - start) / 1_000_000, e.code());
    return e;
  }

  private Path src() {
    return workspace.resolve("src");
  }

  /** HEAD is detached at exactly {@code sha}, the work tree holds its files and nothing else. */
  private void assertCheckedOutDetached(RecordingJobContext ctx, String sha) throws IOException {
    assertEquals(sha, ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
    assertEquals(src(), ctx.get(StageKeys.SOURCE_DIR).orElseThrow());
    assertEquals(sha, GitRepos.git(src(), "rev-parse", "HEAD"));
    assertEquals("HEAD", GitRepos.git(src(), "rev-parse", "--abbrev-ref", "HEAD"), "not detached");
    assertEquals("", GitRepos.git(src(), "status", "--porcelain"), "the work tree is not the commit's");
  }

  private String show(String rev, String path) throws IOException {
    return GitRepos.git(repos.path("app.git"), "show", rev + ":" + path) + "\n";
  }

  private static boolean logged(RecordingJobContext ctx, String fragment) {
    return ctx.lines().stream().anyMatch(l -> l.contains(fragment));
  }

  @Test
  void refTagBuildsTheTagsCommit() throws Exception {
    String sha = repos.revParse("app.git", "refs/tags/v1^{commit}");
    RecordingJobContext ctx = context(server.url("app.git"), "", "refs/tags/v1", "");

    timed("ref refs/tags/v1", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertEquals("1\n", Files.readString(src().resolve("version.txt")));
    // Fetched alone, under its own name, so that git describe finds it.
    assertEquals("refs/tags/v1", GitRepos.git(src(), "for-each-ref", "--format=%(refname)"));
    assertEquals("true", GitRepos.git(src(), "rev-parse", "--is-shallow-repository"));
    assertTrue(logged(ctx, "cloning " + server.url("app.git") + " (ref refs/tags/v1), depth 1"),
        ctx.lines()::toString);
    assertTrue(logged(ctx, "checked out refs/tags/v1 (detached HEAD) at " + sha), ctx.lines()::toString);
  }

  @Test
  void pullRequestMergeRefIsFetchedAndCheckedOut() throws Exception {
    String sha = repos.revParse("app.git", "refs/pull/42/merge");
    RecordingJobContext ctx = context(server.url("app.git"), "", "refs/pull/42/merge", "");

    timed("ref refs/pull/42/merge", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertEquals("pr 2\n", Files.readString(src().resolve("pr.txt")));
    // Exactly that ref: not refs/pull/42/head, no branch, no tag.
    assertEquals("refs/pull/42/merge", GitRepos.git(src(), "for-each-ref", "--format=%(refname)"));
    assertEquals(
        "+refs/pull/42/merge:refs/pull/42/merge",
        GitRepos.git(src(), "config", "remote.origin.fetch"));
  }

  @Test
  void refUnderHeadsIsCheckedOutDetachedToo() throws Exception {
    String sha = repos.revParse("app.git", "refs/heads/main");
    RecordingJobContext ctx = context(server.url("app.git"), "", "refs/heads/main", "");

    timed("ref refs/heads/main", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertEquals("refs/remotes/origin/main", GitRepos.git(src(), "for-each-ref", "--format=%(refname)"));
  }

  @Test
  void refWithFullHistoryWhenDepthIsZero() throws Exception {
    RecordingJobContext ctx = context(server.url("app.git"), "", "refs/pull/42/merge", "");

    timed("ref refs/pull/42/merge, depth 0", ctx, "depth = 0");

    assertEquals("false", GitRepos.git(src(), "rev-parse", "--is-shallow-repository"));
    assertEquals("7", GitRepos.git(src(), "rev-list", "--count", "HEAD"));
  }

  @Test
  void missingRefIsBranchNotFoundAndNamesTheRefsUnderItsPrefix() throws Exception {
    RecordingJobContext ctx = context(server.url("app.git"), "", "refs/pull/99/merge", "");

    StageException e = timedFailure("missing ref", ctx);

    assertEquals("git.branch-not-found", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().contains("ref 'refs/pull/99/merge' does not exist in "), e.getMessage());
    assertTrue(
        e.getMessage().contains("existing refs under refs/pull/: [refs/pull/42/head, refs/pull/42/merge]"),
        e.getMessage());
    assertFalse(Files.exists(src()));
  }

  @Test
  void refOfATreeIsCommitNotFound() throws Exception {
    RecordingJobContext ctx = context(server.url("app.git"), "", "refs/trees/root", "");

    StageException e = timedFailure("ref of a tree", ctx);

    assertEquals("git.commit-not-found", e.code(), e.getMessage());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().contains("ref 'refs/trees/root' of " + server.url("app.git")
        + " names no commit: it points to a tree or blob"), e.getMessage());
    assertFalse(Files.exists(src().resolve("Dockerfile")));
  }

  /**
   * The commit two commits behind main's tip, from a server that sends it by id and from one that
   * will not, where the stage finds it in main's history instead.
   */
  @ParameterizedTest
  @ValueSource(strings = {"allowing", "strict"})
  void olderCommitOnABranchThatMovedOnIsCheckedOutExactly(String kind) throws Exception {
    String sha = repos.revParse("app.git", "refs/heads/main~2");
    strict.refused.clear();
    RecordingJobContext ctx = context(url(kind, "app.git"), "main", "", sha);

    timed("commit_sha main~2 + branch main, " + kind + " server", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertEquals("2\n", Files.readString(src().resolve("version.txt")));
    assertEquals(show(sha, "version.txt"), Files.readString(src().resolve("version.txt")));
    if (kind.equals("strict")) {
      assertEquals(List.of(sha), strict.refused);
      assertTrue(logged(ctx, "the server would not send commit " + sha + " by id"), ctx.lines()::toString);
      assertTrue(logged(ctx, "commit " + sha + " is not in 1 commits of branch 'main'"), ctx.lines()::toString);
      assertTrue(logged(ctx, "found commit " + sha + " in branch 'main' (its whole history fetched)"),
          ctx.lines()::toString);
      assertTrue(logged(ctx, "checked out commit " + sha + " (found in the history of branch 'main'"),
          ctx.lines()::toString);
    } else {
      assertTrue(logged(ctx, "fetched commit " + sha + " by id in "), ctx.lines()::toString);
      assertTrue(logged(ctx, "checked out commit " + sha + " (fetched by id, detached HEAD)"),
          ctx.lines()::toString);
      // Fetched at the configured depth: that commit alone.
      assertEquals("1", GitRepos.git(src(), "rev-list", "--count", "HEAD"));
    }
  }

  /** Without a branch, the default branch is searched. */
  @Test
  void olderCommitWithoutBranchIsSearchedForInTheDefaultBranch() throws Exception {
    String sha = repos.revParse("app.git", "refs/heads/main~2");
    RecordingJobContext ctx = context(strict.url("app.git"), "", "", sha);

    timed("commit_sha main~2, default branch, strict server", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertTrue(logged(ctx, "in branch 'main' (the default branch)"), ctx.lines()::toString);
  }

  /** Deeper and deeper: 1, 10, then 100 commits hold main~50 of a 301-commit history. */
  @Test
  void theSearchDeepensOnlyAsFarAsNeeded() throws Exception {
    String sha = repos.revParse("history.git", "refs/heads/main~50");
    RecordingJobContext ctx = context(strict.url("history.git"), "main", "", sha);

    timed("commit_sha main~50 of 301 commits, strict server", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertTrue(logged(ctx, "is not in 1 commits of branch 'main'"), ctx.lines()::toString);
    assertTrue(logged(ctx, "is not in 10 commits of branch 'main'"), ctx.lines()::toString);
    assertTrue(logged(ctx, "found commit " + sha + " in branch 'main' (100 commits fetched)"),
        ctx.lines()::toString);
    // Not the whole history: the search stopped at 100.
    assertEquals("true", GitRepos.git(src(), "rev-parse", "--is-shallow-repository"));
  }

  /** The tip itself is fetched with its ref, which every server sends. */
  @Test
  void commitAtTheTipOfTheRefIsFetchedWithTheRef() throws Exception {
    String sha = repos.revParse("app.git", "refs/tags/v1^{commit}");
    strict.refused.clear();
    RecordingJobContext ctx = context(strict.url("app.git"), "", "refs/tags/v1", sha);

    timed("commit_sha = tip of refs/tags/v1, strict server", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertTrue(strict.refused.isEmpty(), strict.refused::toString);
    assertTrue(logged(ctx, "checked out commit " + sha + ", the tip of ref 'refs/tags/v1'"),
        ctx.lines()::toString);
  }

  @ParameterizedTest
  @ValueSource(strings = {"allowing", "strict"})
  void commitShaTogetherWithRef(String kind) throws Exception {
    // pr 1: reachable only from refs/pull/42/*, one commit behind the merge ref's tip.
    String sha = repos.revParse("app.git", "refs/pull/42/merge~1");
    RecordingJobContext ctx = context(url(kind, "app.git"), "", "refs/pull/42/merge", sha);

    timed("commit_sha pr~1 + ref refs/pull/42/merge, " + kind + " server", ctx, "");

    assertCheckedOutDetached(ctx, sha);
    assertEquals("pr 1\n", Files.readString(src().resolve("pr.txt")));
    if (kind.equals("strict")) {
      assertTrue(logged(ctx, "found commit " + sha + " in ref 'refs/pull/42/merge'"), ctx.lines()::toString);
    }
  }

  @Test
  void commitNotInTheNamedRefIsCommitNotFound() throws Exception {
    // pr 1 is on the pull request's refs only, and no ref's tip, so the strict server will not
    // send it by id: main's history is searched, and it is not there.
    String sha = repos.revParse("app.git", "refs/pull/42/merge~1");
    RecordingJobContext ctx = context(strict.url("app.git"), "main", "", sha);

    StageException e = timedFailure("commit_sha not on branch main, strict server", ctx);

    assertEquals("git.commit-not-found", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().contains("commit " + sha + " cannot be checked out from "), e.getMessage());
    assertTrue(e.getMessage().contains("the server would not send it by id (upload-pack: not our ref " + sha),
        e.getMessage());
    assertTrue(e.getMessage().contains("it is not in the history of branch 'main' (all 5 commits searched"),
        e.getMessage());
  }

  /** An unknown commit fails at once on a server that would send any commit by id, and promptly on one that would not. */
  @ParameterizedTest
  @ValueSource(strings = {"allowing", "strict"})
  void unknownCommitIsCommitNotFound(String kind) throws Exception {
    RecordingJobContext ctx = context(url(kind, "app.git"), "", "", UNKNOWN);
    long start = System.nanoTime();

    StageException e = timedFailure("unknown commit_sha, " + kind + " server", ctx);

    long millis = (System.nanoTime() - start) / 1_000_000;
    assertEquals("git.commit-not-found", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().contains("commit " + UNKNOWN + " cannot be checked out from " + url(kind, "app.git")),
        e.getMessage());
    assertTrue(e.getMessage().contains("the server would not send it by id"), e.getMessage());
    assertTrue(
        e.getMessage().contains("not in the history of branch 'main' (the default branch) (all 5 commits searched"),
        e.getMessage());
    assertTrue(millis < 10_000, "took " + millis + " ms");
    // Nothing was checked out.
    assertFalse(Files.exists(src().resolve("Dockerfile")));
  }

  @Test
  void unknownCommitWithAMissingBranchSaysSo() throws Exception {
    RecordingJobContext ctx = context(server.url("app.git"), "gone", "", UNKNOWN);

    StageException e = timedFailure("unknown commit_sha, missing branch", ctx);

    assertEquals("git.commit-not-found", e.code());
    assertTrue(e.getMessage().contains("and branch 'gone' does not exist (existing branches: [main])"),
        e.getMessage());
  }

  /** A branch deleted since the push does not matter when the commit can be had by id. */
  @Test
  void commitFetchedByIdNeedsNoBranch() throws Exception {
    String sha = repos.revParse("app.git", "refs/heads/main~1");
    RecordingJobContext ctx = context(server.url("app.git"), "deleted-after-push", "", sha);

    timed("commit_sha + missing branch, allowing server", ctx, "");

    assertCheckedOutDetached(ctx, sha);
  }

  @Test
  void anIdThatIsNotACommitIsCommitNotFound() throws Exception {
    String blob = repos.revParse("app.git", "refs/heads/main:Dockerfile");
    RecordingJobContext ctx = context(server.url("app.git"), "", "", blob);

    StageException e = timedFailure("blob id as commit_sha", ctx);

    assertEquals("git.commit-not-found", e.code());
    assertTrue(e.getMessage().contains("it names a blob, not a commit"), e.getMessage());
    assertFalse(Files.exists(src().resolve("Dockerfile")));
  }

  @Test
  void upperCaseCommitShaIsPublishedInLowerCase() throws Exception {
    String sha = repos.revParse("app.git", "refs/heads/main~2");
    RecordingJobContext ctx = context(server.url("app.git"), "", "", sha.toUpperCase(java.util.Locale.ROOT));

    timed("upper-case commit_sha", ctx, "");

    assertCheckedOutDetached(ctx, sha);
  }

  @Test
  void depthZeroFetchesTheCommitsWholeHistory() throws Exception {
    String sha = repos.revParse("app.git", "refs/heads/main~2");
    RecordingJobContext ctx = context(server.url("app.git"), "", "", sha);

    timed("commit_sha main~2, depth 0", ctx, "depth = 0");

    assertCheckedOutDetached(ctx, sha);
    assertEquals("false", GitRepos.git(src(), "rev-parse", "--is-shallow-repository"));
    assertEquals("3", GitRepos.git(src(), "rev-list", "--count", "HEAD"));
  }

  /** Relative submodule URLs resolve against repo_url with a detached HEAD too. */
  @Test
  void submodulesOfAnExactCommitAreClonedAtTheCommitsItPins() throws Exception {
    String sha = repos.revParse("super.git", "refs/heads/main~1");
    RecordingJobContext ctx = context(strict.url("super.git"), "", "", sha);

    timed("commit_sha with submodules, strict server", ctx, "submodules = true");

    assertCheckedOutDetached(ctx, sha);
    assertFalse(Files.exists(src().resolve("more.txt")));
    assertEquals("inner\n", Files.readString(src().resolve("vendor/inner/inner.txt")));
    assertEquals(repos.revParse("inner.git", "HEAD"),
        GitRepos.git(src().resolve("vendor/inner"), "rev-parse", "HEAD"));
  }

  /** The size limit holds for every fetch of the search, and for the checkout of the commit. */
  @Test
  void theSizeLimitHoldsForExactCheckouts() throws Exception {
    String sha = repos.revParse("big.git", "refs/heads/main~1");
    RecordingJobContext ctx = context(strict.url("big.git"), "", "", sha);

    StageException e =
        assertThrows(StageException.class, () -> run(stage("max-checkout-size = 64KiB"), ctx));

    assertEquals("git.repo-too-large", e.code());
    assertTrue(e.getMessage().contains("at commit " + sha + " is too large"), e.getMessage());
    assertFalse(Files.exists(src().resolve("blob-0.bin")));
  }

  /** The searched path writes remote config and fetches more than once: no token anywhere. */
  @Test
  void theTokenIsInNoFileOfTheSearchedCheckout() throws Exception {
    String sha = repos.revParse("app.git", "refs/heads/main~2");
    RecordingJobContext ctx = context(strict.url("app.git"), "main", "", sha);

    run(stage(), ctx);

    byte[] token = TOKEN.getBytes(StandardCharsets.UTF_8);
    try (Stream<Path> files = Files.walk(src())) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        assertFalse(contains(Files.readAllBytes(file), token), "token in " + file);
      }
    }
    assertTrue(ctx.lines().stream().noneMatch(l -> l.contains(TOKEN)), ctx.lines()::toString);
  }

  private static boolean contains(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }
}

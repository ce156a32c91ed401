package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The mirror cache against real git over smart HTTP on 127.0.0.1: what a repeat clone fetches
 * (nothing, or only what is new), that it is never stale, that concurrent jobs and two stages on
 * one directory keep it whole, that credentials never share a mirror, that damage is repaired,
 * and that the size bound holds.
 *
 * <p>{@link StrictWantFront} stands in front of the server where a test counts what was asked
 * for: every {@code want} a clone sends passes it, so "no want" means "no pack downloaded".
 */
class GitMirrorCacheTest {
  private static final String TOKEN = "ghp_mirror-cache-test-token-0123456789";

  @TempDir static Path repoRoot;
  @TempDir static Path scratch;
  private static GitRepos repos;
  private static GitHttpServer server;
  private static StrictWantFront front;

  @TempDir Path cacheDir;
  @TempDir Path workspaces;
  private final AtomicInteger jobs = new AtomicInteger();
  private final List<Stage> stages = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void startServer() throws Exception {
    repos = new GitRepos(repoRoot);
    repos.repository("app.git")
        .file("Dockerfile", "FROM scratch\n").file("version.txt", "0\n").commit("initial")
        .commits(8)
        .branch("feature").file("feature.txt", "feature\n").commit("feature work")
        .build();
    GitRepos.git(repos.path("app.git"), "tag", "-a", "-m", "release 1", "v1", "refs/heads/main~3");
    repos.repository("public.git").file("README.md", "public\n").commit("initial").build();
    for (String name : List.of("big-1.git", "big-2.git", "big-3.git")) {
      repos.repository(name).file("Dockerfile", "FROM scratch\n")
          .randomFiles(1, 48 * 1024, name.hashCode()).commit("48 KiB of noise").build();
    }
    repos.repository("cancelled.git").file("Dockerfile", "FROM scratch\n").commit("initial")
        .build();
    repos.repository("inner.git").file("inner.txt", "inner\n").commit("inner").build();
    repos.repository("super.git").file("Dockerfile", "FROM scratch\n")
        .submodule("vendor/inner", "../inner.git", repos.revParse("inner.git", "HEAD"))
        .commit("with a submodule").build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN)
        .anonymous("public.git").start();
    front = new StrictWantFront(server.port(), repos.root());
  }

  @AfterAll
  static void stopServer() throws IOException {
    front.close();
    server.close();
  }

  @BeforeEach
  void clearWants() {
    front.granted.clear();
    front.refused.clear();
  }

  /** As the runtime does at shutdown: the background work ends before the cache goes. */
  @AfterEach
  void closeStages() {
    stages.forEach(Stage::close);
  }

  // --- helpers -------------------------------------------------------------------------------

  /** A stage on this test's cache; without ready checkouts unless {@code hocon} says. */
  private Stage stage(String hocon) throws Exception {
    Stage stage = GitTestSupport.stage("cache.dir = \"" + cacheDir + "\","
        + " cache.ready-checkouts = false" + (hocon.isEmpty() ? "" : ", ") + hocon);
    stages.add(stage);
    return stage;
  }

  private Stage readyStage(String hocon) throws Exception {
    return stage("cache.ready-checkouts = true" + (hocon.isEmpty() ? "" : ", ") + hocon);
  }

  private static void idle(Stage stage) throws InterruptedException {
    ((GitStage) stage).awaitMaintenance();
  }

  private List<Path> ready() throws IOException {
    Path dir = cacheDir.resolve("ready");
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> walk = Files.walk(dir, 2)) {
      return walk.filter(p -> p.getNameCount() - dir.getNameCount() == 2).sorted().toList();
    }
  }

  private Path newWorkspace() throws IOException {
    return Files.createDirectories(workspaces.resolve("job-" + jobs.incrementAndGet()));
  }

  private static RecordingJobContext job(Path workspace, String url, String branch) {
    return context(workspace, url, branch, TOKEN);
  }

  private static RecordingJobContext exact(Path workspace, String url, String ref, String sha) {
    JobRequestView request = JobRequestView.builder(url, "app:test").jobId("job-exact")
        .token(Optional.of(Secret.of(TOKEN))).ref(ref).commitSha(sha).build();
    return new RecordingJobContext(request, workspace);
  }

  private static String sha(RecordingJobContext ctx) {
    return ctx.get(StageKeys.COMMIT_SHA).orElseThrow();
  }

  private static boolean logged(RecordingJobContext ctx, String fragment) {
    return ctx.lines().stream().anyMatch(l -> l.contains(fragment));
  }

  private List<Path> mirrors() throws IOException {
    Path dir = cacheDir.resolve("mirrors");
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> list = Files.list(dir)) {
      return list.filter(p -> p.toString().endsWith(".git")).sorted().toList();
    }
  }

  private Path onlyMirror() throws IOException {
    List<Path> mirrors = mirrors();
    assertEquals(1, mirrors.size(), mirrors::toString);
    return mirrors.get(0);
  }

  private static List<String> packs(Path mirror) throws IOException {
    try (Stream<Path> list = Files.list(mirror.resolve("objects/pack"))) {
      return list.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".pack")).sorted()
          .toList();
    }
  }

  private static long size(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      return walk.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  /** A new commit on {@code branch} of {@code repository}, pushed as a developer would. */
  private static String push(String repository, String branch, String path, String content)
      throws IOException {
    Path work = Files.createTempDirectory(scratch, "push-");
    GitRepos.git(scratch, "clone", "-q", "--branch", branch, repos.path(repository).toString(),
        work.toString());
    Files.writeString(work.resolve(path), content);
    GitRepos.git(work, "add", "-A");
    GitRepos.git(work, "commit", "-q", "-m", "change " + path);
    GitRepos.git(work, "push", "-q", "origin", branch);
    return GitRepos.git(work, "rev-parse", "HEAD");
  }

  /** The checkout is a whole repository of its own: git finds every object, and it is clean. */
  private static void assertStandalone(Path src) throws IOException {
    assertFalse(Files.exists(src.resolve(".git/objects/info/alternates")), "uses alternates");
    GitRepos.git(src, "fsck", "--full", "--no-dangling");
    assertEquals("", GitRepos.git(src, "status", "--porcelain"));
  }

  // --- tests ---------------------------------------------------------------------------------

  @Test
  void aRepeatCloneOfAnUnchangedBranchDownloadsNoPack() throws Exception {
    Stage stage = stage("");
    String url = front.url("app.git");
    RecordingJobContext first = job(newWorkspace(), url, "");
    run(stage, first);
    Path mirror = onlyMirror();
    List<String> packsBefore = packs(mirror);
    int wantsBefore = front.granted.size();
    assertTrue(wantsBefore > 0, "the first clone fetched nothing?");

    Path workspace = newWorkspace();
    RecordingJobContext second = job(workspace, url, "");
    run(stage, second);

    assertEquals(repos.revParse("app.git", "refs/heads/main"), sha(second));
    // The build labels the image with the commit's time: the same from the cache.
    assertEquals(first.get(StageKeys.COMMIT_TIME), second.get(StageKeys.COMMIT_TIME));
    assertEquals(Optional.of(java.time.Instant.ofEpochSecond(Long.parseLong(GitRepos.git(
        repos.path("app.git"), "log", "-1", "--format=%ct", "refs/heads/main")))),
        second.get(StageKeys.COMMIT_TIME));
    assertEquals(wantsBefore, front.granted.size(), "the second clone asked for objects");
    assertEquals(packsBefore, packs(mirror), "the mirror changed");
    assertTrue(logged(second, "the worker's mirror has branch main at " + sha(second)
        + " already; nothing to fetch"), second.lines()::toString);
    Path src = workspace.resolve("src");
    // What a clone without the cache makes: one branch, depth 1, origin's URL, no token.
    assertEquals("main", GitRepos.git(src, "rev-parse", "--abbrev-ref", "HEAD"));
    assertEquals("origin/main", GitRepos.git(src, "branch", "-r", "--format=%(refname:short)"));
    assertEquals(url, GitRepos.git(src, "config", "remote.origin.url"));
    assertEquals("+refs/heads/main:refs/remotes/origin/main",
        GitRepos.git(src, "config", "remote.origin.fetch"));
    assertEquals("origin", GitRepos.git(src, "config", "branch.main.remote"));
    assertEquals("1", GitRepos.git(src, "rev-list", "--count", "HEAD"));
    assertEquals(List.of(sha(second)), Files.readAllLines(src.resolve(".git/shallow")));
    assertEquals("change 8 on main\n", Files.readString(src.resolve("history.txt")));
    assertStandalone(src);
    // It does not need the mirror: gone, the checkout still stands.
    GitTestSupport.deleteTree(cacheDir.resolve("mirrors"));
    assertStandalone(src);
  }

  @Test
  void aMovedTipIsNeverServedStaleAndOnlyWhatIsNewIsFetched() throws Exception {
    Stage stage = stage("");
    String url = front.url("app.git");
    run(stage, job(newWorkspace(), url, "feature"));
    String old = repos.revParse("app.git", "refs/heads/feature");
    int packsBefore = packs(onlyMirror()).size();

    String moved = push("app.git", "feature", "feature.txt", "moved on\n");
    Path workspace = newWorkspace();
    RecordingJobContext ctx = job(workspace, url, "feature");
    run(stage, ctx);

    assertEquals(moved, sha(ctx));
    assertEquals("moved on\n", Files.readString(workspace.resolve("src/feature.txt")));
    assertTrue(logged(ctx, "fetched what is new of branch feature into the worker's mirror"),
        ctx.lines()::toString);
    assertEquals(packsBefore + 1, packs(onlyMirror()).size(), "one small pack of what is new");
    assertStandalone(workspace.resolve("src"));

    // Force-pushed back: the mirror has that commit, and the server's word is what counts.
    GitRepos.git(repos.path("app.git"), "update-ref", "refs/heads/feature", old);
    RecordingJobContext back = job(newWorkspace(), url, "feature");
    run(stage, back);
    assertEquals(old, sha(back));
    assertEquals("feature\n", Files.readString(back.workspace().resolve("src/feature.txt")));
    GitRepos.git(onlyMirror(), "fsck", "--no-dangling");
  }

  @Test
  void aBranchDeletedOnTheServerIsBranchNotFoundThoughTheMirrorHasIt() throws Exception {
    Stage stage = stage("");
    GitRepos.git(repos.path("app.git"), "update-ref", "refs/heads/doomed", "refs/heads/main");
    run(stage, job(newWorkspace(), server.url("app.git"), "doomed"));
    GitRepos.git(repos.path("app.git"), "update-ref", "-d", "refs/heads/doomed");
    Path workspace = newWorkspace();

    StageException e = assertThrows(StageException.class,
        () -> run(stage, job(workspace, server.url("app.git"), "doomed")));

    assertEquals("git.branch-not-found", e.code());
    assertTrue(e.getMessage().contains("branch 'doomed' does not exist"), e.getMessage());
    assertTrue(e.getMessage().contains("existing branches: [feature, main]"), e.getMessage());
    assertFalse(Files.exists(workspace.resolve("src")));
  }

  @Test
  void eachCredentialHasItsOwnMirrorAndAWrongTokenIsRefusedAsWithout() throws Exception {
    Stage stage = readyStage("");
    run(stage, context(newWorkspace(), server.url("public.git"), "", TOKEN));
    assertEquals(1, mirrors().size());
    // The same URL without a token: a mirror of its own, filled from the server again.
    RecordingJobContext anonymous = context(newWorkspace(), server.url("public.git"), "", null);
    run(stage, anonymous);
    assertEquals(2, mirrors().size());
    assertTrue(logged(anonymous, "made the worker's mirror of this repository"),
        anonymous.lines()::toString);

    run(stage, job(newWorkspace(), server.url("app.git"), "main"));
    assertEquals(3, mirrors().size());
    // A mirror of app.git exists; neither no token nor a wrong one gets anything from it.
    for (String token : new String[] {null, "ghp_wrong-token-0123456789abcdef"}) {
      Path workspace = newWorkspace();
      StageException e = assertThrows(StageException.class,
          () -> run(stage, context(workspace, server.url("app.git"), "main", token)));
      assertEquals("git.auth-failed", e.code());
      assertFalse(Files.exists(workspace.resolve("src")));
    }
    assertEquals(3, mirrors().size());

    // The token is nowhere in the cache: not in a config, a name or any file, ready checkouts
    // included.
    RecordingJobContext last = job(newWorkspace(), server.url("app.git"), "main");
    run(stage, last);
    idle(stage);
    assertFalse(ready().isEmpty(), "no ready checkout to look into");
    // And a job that takes the ready checkout: its workspace is scanned below too.
    RecordingJobContext fromReady = job(newWorkspace(), server.url("app.git"), "main");
    run(stage, fromReady);
    assertTrue(logged(fromReady, "that the worker had ready"), fromReady.lines()::toString);
    List<byte[]> forms = List.of(TOKEN.getBytes(StandardCharsets.UTF_8),
        URLEncoder.encode(TOKEN, StandardCharsets.UTF_8).getBytes(StandardCharsets.UTF_8),
        Base64.getEncoder().encode(("x-access-token:" + TOKEN).getBytes(StandardCharsets.UTF_8)));
    List<String> leaks = new ArrayList<>();
    for (RecordingJobContext ctx : List.of(last, fromReady)) {
      ctx.lines().stream().filter(l -> l.contains(TOKEN)).forEach(l -> leaks.add("log " + l));
    }
    try (Stream<Path> walk = Stream.concat(Files.walk(cacheDir), Files.walk(workspaces))) {
      for (Path path : walk.toList()) {
        if (path.toString().contains(TOKEN)) {
          leaks.add("name " + path);
        }
        if (Files.isRegularFile(path)) {
          byte[] bytes = Files.readAllBytes(path);
          for (byte[] form : forms) {
            if (indexOf(bytes, form) >= 0) {
              leaks.add("content of " + path);
            }
          }
        }
      }
    }
    assertEquals(List.of(), leaks);
  }

  @Test
  void concurrentJobsOnOneRepositoryAllGetTheirCommitsAndKeepTheMirrorWhole() throws Exception {
    // Ready checkouts on: some jobs take one, the others race past it.
    Stage one = readyStage("");
    Stage two = readyStage(""); // a second stage on the same directory, as a second worker
                                // would be
    String url = server.url("app.git");
    for (int round = 0; round < 3; round++) {
      String main = push("app.git", "main", "round.txt", "round " + round + "\n");
      String feature = repos.revParse("app.git", "refs/heads/feature");
      int n = 6;
      CyclicBarrier start = new CyclicBarrier(n);
      List<Throwable> failures = new CopyOnWriteArrayList<>();
      List<Thread> threads = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        Stage stage = i % 2 == 0 ? one : two;
        String branch = i % 3 == 2 ? "feature" : "main";
        String expected = branch.equals("main") ? main : feature;
        Path workspace = newWorkspace();
        Thread t = new Thread(() -> {
          try {
            RecordingJobContext ctx = job(workspace, url, branch);
            start.await();
            run(stage, ctx);
            assertEquals(expected, sha(ctx));
            assertStandalone(workspace.resolve("src"));
          } catch (Throwable e) {
            failures.add(e);
          }
        });
        t.start();
        threads.add(t);
      }
      for (Thread t : threads) {
        t.join(60_000);
      }
      assertEquals(List.of(), failures);
      GitRepos.git(onlyMirror(), "fsck", "--no-dangling");
    }
  }

  @Test
  void evictionKeepsTheCacheWithinItsBoundLeastRecentlyUsedFirst() throws Exception {
    // Each mirror takes about 50 KiB: two fit, three do not.
    long bound = 130 * 1024;
    Stage stage = stage("cache.max-size = " + bound);
    List<String> order = List.of("big-1.git", "big-2.git", "big-3.git", "big-1.git");
    RecordingJobContext last = null;
    for (String repository : order) {
      last = job(newWorkspace(), server.url(repository), "");
      run(stage, last);
      long total = 0;
      for (Path mirror : mirrors()) {
        total += size(mirror);
      }
      assertTrue(total <= bound, "the cache holds " + total + " bytes after " + repository);
      Thread.sleep(20); // distinct last-use times
    }
    assertEquals(2, mirrors().size(), mirrors()::toString);
    assertTrue(logged(last, "removed 1 least recently used mirror"), last.lines()::toString);
    // big-1 was evicted by big-3, then made again; big-2 went to make room for it.
    assertTrue(logged(last, "made the worker's mirror of this repository"), last.lines()::toString);
    try (Stream<Path> trash = Files.list(cacheDir.resolve("trash"))) {
      assertEquals(0, trash.count(), "evicted mirrors are deleted");
    }
  }

  @Test
  void aRepeatJobOfAnUnchangedCommitTakesTheCheckoutMadeReadyForIt() throws Exception {
    Stage stage = readyStage("");
    String url = front.url("app.git");
    // The first clone of a repository makes none: most are cloned once.
    run(stage, job(newWorkspace(), url, "main"));
    idle(stage);
    assertEquals(List.of(), ready());
    run(stage, job(newWorkspace(), url, "main"));
    idle(stage);
    String tip = repos.revParse("app.git", "refs/heads/main");
    assertEquals(1, ready().size(), ready()::toString);
    assertTrue(ready().get(0).getFileName().toString().contains("-" + tip + "-"), ready()::toString);
    int wants = front.granted.size();

    Path workspace = newWorkspace();
    RecordingJobContext second = job(workspace, url, "main");
    run(stage, second);

    assertEquals(tip, sha(second));
    assertTrue(logged(second, "took the checkout of " + tip + " that the worker had ready"),
        second.lines()::toString);
    assertEquals(Optional.of(java.time.Instant.ofEpochSecond(Long.parseLong(GitRepos.git(
        repos.path("app.git"), "log", "-1", "--format=%ct", tip)))),
        second.get(StageKeys.COMMIT_TIME));
    assertEquals(wants, front.granted.size(), "asked the server for objects");
    Path src = workspace.resolve("src");
    assertEquals("main", GitRepos.git(src, "rev-parse", "--abbrev-ref", "HEAD"));
    assertEquals("origin/main", GitRepos.git(src, "branch", "-r", "--format=%(refname:short)"));
    assertEquals(url, GitRepos.git(src, "config", "remote.origin.url"));
    assertEquals("1", GitRepos.git(src, "rev-list", "--count", "HEAD"));
    assertEquals(List.of(tip), Files.readAllLines(src.resolve(".git/shallow")));
    assertStandalone(src);
    // Taken, so gone from the cache; and made again for the next job.
    idle(stage);
    assertEquals(1, ready().size(), ready()::toString);
    RecordingJobContext third = job(newWorkspace(), url, "main");
    run(stage, third);
    assertTrue(logged(third, "had ready"), third.lines()::toString);

    // The branch moved on: the ready checkout is of the old commit, so it is not taken as it
    // is, but brought up to the new one.
    idle(stage);
    String moved = push("app.git", "main", "ready.txt", "moved\n");
    RecordingJobContext fourth = job(newWorkspace(), url, "main");
    run(stage, fourth);
    assertEquals(moved, sha(fourth));
    assertFalse(logged(fourth, "had ready"), fourth.lines()::toString);
    assertTrue(logged(fourth, "brought the worker's ready checkout of " + tip + " up to " + moved),
        fourth.lines()::toString);
    assertEquals("moved\n", Files.readString(fourth.workspace().resolve("src/ready.txt")));
    assertEquals(List.of(moved), Files.readAllLines(fourth.workspace().resolve("src/.git/shallow")));
    assertEquals("1", GitRepos.git(fourth.workspace().resolve("src"), "rev-list", "--count", "HEAD"));
    assertStandalone(fourth.workspace().resolve("src"));
    idle(stage);
    assertEquals(1, ready().size(), "one per branch and depth: " + ready());
    assertTrue(ready().get(0).getFileName().toString().contains("-" + moved + "-"));

    // Another depth and a ref each have their own.
    run(stage, job(newWorkspace(), url, "main").options(StageOptions.of(Map.of("depth", "3"))));
    run(stage, exact(newWorkspace(), url, "refs/tags/v1", ""));
    idle(stage);
    assertEquals(3, ready().size(), ready()::toString);
    RecordingJobContext deeper = job(newWorkspace(), url, "main")
        .options(StageOptions.of(Map.of("depth", "3")));
    run(stage, deeper);
    assertTrue(logged(deeper, "had ready"), deeper.lines()::toString);
    assertEquals("3", GitRepos.git(deeper.workspace().resolve("src"), "rev-list", "--count",
        "HEAD"));
    RecordingJobContext tag = exact(newWorkspace(), url, "refs/tags/v1", "");
    run(stage, tag);
    assertTrue(logged(tag, "had ready"), tag.lines()::toString);
    Path tagSrc = tag.workspace().resolve("src");
    assertEquals(repos.revParse("app.git", "refs/tags/v1^{commit}"), sha(tag));
    assertEquals("HEAD", GitRepos.git(tagSrc, "rev-parse", "--abbrev-ref", "HEAD"));
    assertEquals("refs/tags/v1", GitRepos.git(tagSrc, "for-each-ref", "--format=%(refname)"));
    assertStandalone(tagSrc);
  }

  /**
   * A changed-file job: the ready checkout of the branch's previous commit is brought up to the
   * new one, and the result is what a fresh clone at depth 1 gives, file for file.
   */
  @Test
  void aNewCommitIsMadeFromTheReadyCheckoutOfTheOldOneWritingOnlyWhatChanged() throws Exception {
    repos.repository("changes.git").file("Dockerfile", "FROM scratch\n")
        .file("keep.txt", "kept\n").file("dir/edit.txt", "one\n").file("dir/gone.txt", "gone\n")
        .commit("initial").commits(3).build();
    Stage stage = readyStage("");
    String url = front.url("changes.git");
    run(stage, job(newWorkspace(), url, "main"));
    run(stage, job(newWorkspace(), url, "main")); // from the mirror: makes one ready
    idle(stage);
    assertEquals(1, ready().size(), ready()::toString);
    String old = repos.revParse("changes.git", "refs/heads/main");
    String goneBlob = GitRepos.git(repos.path("changes.git"), "rev-parse", old + ":dir/gone.txt");
    // One commit that edits, removes, adds and makes a file executable.
    Path work = Files.createTempDirectory(scratch, "change-");
    GitRepos.git(scratch, "clone", "-q", repos.path("changes.git").toString(), work.toString());
    Files.writeString(work.resolve("dir/edit.txt"), "two\n");
    Files.delete(work.resolve("dir/gone.txt"));
    Files.createDirectories(work.resolve("new/deep"));
    Files.writeString(work.resolve("new/deep/added.sh"), "#!/bin/sh\necho added\n");
    Files.setPosixFilePermissions(work.resolve("new/deep/added.sh"),
        java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
    Files.createSymbolicLink(work.resolve("link"), Path.of("keep.txt"));
    String changed = commitAll(work, "one change");
    GitRepos.git(work, "push", "-q", "origin", "main");

    RecordingJobContext job = job(newWorkspace(), url, "main");
    run(stage, job);

    assertEquals(changed, sha(job));
    assertTrue(logged(job, "brought the worker's ready checkout of " + old + " up to " + changed),
        job.lines()::toString);
    assertTrue(logged(job, " 4 file(s) written or removed"), job.lines()::toString);
    Path src = job.workspace().resolve("src");
    assertEquals(tree(freshClone("changes.git")), tree(src));
    assertTrue(Files.isExecutable(src.resolve("new/deep/added.sh")));
    assertFalse(Files.exists(src.resolve("dir/gone.txt")));
    assertEquals("main", GitRepos.git(src, "rev-parse", "--abbrev-ref", "HEAD"));
    assertEquals(changed, GitRepos.git(src, "rev-parse", "origin/main"));
    assertEquals("1", GitRepos.git(src, "rev-list", "--count", "HEAD"));
    assertEquals(List.of(changed), Files.readAllLines(src.resolve(".git/shallow")));
    // Nothing of the old commit stays in .git: a file the new commit deleted (a secret, say) is
    // gone from the workspace as from a new clone.
    assertThrows(IOException.class, () -> GitRepos.git(src, "cat-file", "-e", goneBlob));
    assertThrows(IOException.class, () -> GitRepos.git(src, "cat-file", "-e", old));
    assertEquals("", GitRepos.git(src, "fsck", "--unreachable", "--no-progress"));
    assertEquals(Optional.of(java.time.Instant.ofEpochSecond(Long.parseLong(GitRepos.git(
        src, "log", "-1", "--format=%ct", changed)))), job.get(StageKeys.COMMIT_TIME));
    assertStandalone(src);
    assertEquals(Path.of("keep.txt"), Files.readSymbolicLink(src.resolve("link")));

    // A folder that becomes a file and a file that becomes a folder.
    idle(stage);
    GitRepos.git(work, "rm", "-q", "-r", "dir", "keep.txt");
    Files.writeString(work.resolve("dir"), "a file now\n");
    Files.createDirectories(work.resolve("keep.txt"));
    Files.writeString(work.resolve("keep.txt/inner"), "a folder now\n");
    String swapped = commitAll(work, "swap");
    GitRepos.git(work, "push", "-q", "origin", "main");
    RecordingJobContext swap = job(newWorkspace(), url, "main");
    run(stage, swap);
    assertEquals(swapped, sha(swap));
    assertTrue(logged(swap, "brought the worker's ready checkout of " + changed), swap.lines()::toString);
    assertEquals(tree(freshClone("changes.git")), tree(swap.workspace().resolve("src")));
    assertStandalone(swap.workspace().resolve("src"));

    // A force-push to an unrelated history is brought up the same way.
    idle(stage);
    Path other = Files.createTempDirectory(scratch, "rewrite-");
    GitRepos.git(other, "init", "-q", "-b", "main");
    Files.writeString(other.resolve("Dockerfile"), "FROM scratch\n");
    Files.writeString(other.resolve("rewritten.txt"), "all new\n");
    String rewritten = commitAll(other, "rewritten");
    GitRepos.git(other, "push", "-q", "--force", repos.path("changes.git").toString(), "main");
    RecordingJobContext again = job(newWorkspace(), url, "main");
    run(stage, again);
    assertEquals(rewritten, sha(again));
    assertTrue(logged(again, "brought the worker's ready checkout of " + swapped), again.lines()::toString);
    Path rewrittenSrc = again.workspace().resolve("src");
    assertEquals(tree(freshClone("changes.git")), tree(rewrittenSrc));
    assertEquals("1", GitRepos.git(rewrittenSrc, "rev-list", "--count", "HEAD"));
    assertStandalone(rewrittenSrc);

    // Attributes (here: CRLF line ends) are applied as git applies them, by a whole checkout.
    idle(stage);
    Files.writeString(other.resolve(".gitattributes"), "*.txt text eol=crlf\n");
    Files.writeString(other.resolve("crlf.txt"), "line one\nline two\n");
    String attributed = commitAll(other, "attributes");
    GitRepos.git(other, "push", "-q", repos.path("changes.git").toString(), "main");
    RecordingJobContext crlf = job(newWorkspace(), url, "main");
    run(stage, crlf);
    assertEquals(attributed, sha(crlf));
    assertFalse(logged(crlf, "brought the worker's ready checkout"), crlf.lines()::toString);
    assertEquals("line one\r\nline two\r\n", Files.readString(crlf.workspace().resolve("src/crlf.txt")));
    assertEquals(tree(freshClone("changes.git")), tree(crlf.workspace().resolve("src")));
    assertStandalone(crlf.workspace().resolve("src"));
  }

  /**
   * The size limit counts what the workspace holds as the whole checkout would: the files already
   * there are not counted twice. Files of 600 KiB in a pack of about as much, against a limit of
   * 1600 KiB, pass the whole checkout (pack and files, 1.2 MiB) and must pass this one too.
   */
  @Test
  void theSizeLimitCountsABroughtUpCheckoutAsAWholeOne() throws Exception {
    repos.repository("limit.git").file("Dockerfile", "FROM scratch\n")
        .randomFiles(1, 600 * 1024, 7).file("small.txt", "1\n").commit("noise").build();
    Stage stage = readyStage("max-checkout-size = 1600KiB");
    String url = front.url("limit.git");
    run(stage, job(newWorkspace(), url, "main"));
    run(stage, job(newWorkspace(), url, "main"));
    idle(stage);
    assertEquals(1, ready().size(), ready()::toString);
    String changed = push("limit.git", "main", "small.txt", "2\n");

    RecordingJobContext job = job(newWorkspace(), url, "main");
    run(stage, job);

    assertEquals(changed, sha(job));
    assertTrue(logged(job, "brought the worker's ready checkout"), job.lines()::toString);
    assertStandalone(job.workspace().resolve("src"));
  }

  /**
   * A new commit whose tree git would refuse to check out (here a name that is a link and a
   * folder at once, written with git's plumbing) is not applied path by path: the whole
   * checkout refuses it, and nothing lands outside the work tree.
   */
  @Test
  void aTreeGitWouldRefuseIsNotAppliedPathByPath() throws Exception {
    repos.repository("hostile.git").file("Dockerfile", "FROM scratch\n").file("a.txt", "a\n")
        .commit("initial").build();
    Stage stage = readyStage("");
    String url = front.url("hostile.git");
    run(stage, job(newWorkspace(), url, "main"));
    run(stage, job(newWorkspace(), url, "main"));
    idle(stage);
    assertEquals(1, ready().size(), ready()::toString);
    Path bare = repos.path("hostile.git");
    String outside = Files.createTempDirectory(scratch, "outside-").toString();
    String link = writeBlob(bare, outside); // a symbolic link's blob is its target
    String inner = writeBlob(bare, "pwned\n");
    String subtree = mktree(bare, "100644 blob " + inner + "\tx\n");
    String dockerfile = GitRepos.git(bare, "rev-parse", "main:Dockerfile");
    String tree = mktree(bare, "100644 blob " + dockerfile + "\tDockerfile\n"
        + "120000 blob " + link + "\td\n" + "040000 tree " + subtree + "\td\n");
    String commit = GitRepos.git(bare, "commit-tree", tree, "-p", "main", "-m", "hostile");
    GitRepos.git(bare, "update-ref", "refs/heads/main", commit);

    RecordingJobContext job = job(newWorkspace(), url, "main");
    try {
      run(stage, job);
    } catch (Exception e) {
      // Refused by the whole checkout: what matters is below.
    }

    assertFalse(logged(job, "brought the worker's ready checkout"), job.lines()::toString);
    try (Stream<Path> files = Files.list(Path.of(outside))) {
      assertEquals(List.of(), files.toList(), "written outside the work tree");
    }
  }

  private static String writeBlob(Path bare, String content) throws IOException {
    Path file = Files.createTempFile(scratch, "blob-", ".txt");
    Files.writeString(file, content);
    return GitRepos.git(bare, "hash-object", "-w", file.toString());
  }

  /** A tree object from {@code git mktree}'s listing, written as it is (no checks of names). */
  private static String mktree(Path bare, String listing) throws IOException {
    Path file = Files.createTempFile(scratch, "tree-", ".txt");
    Files.writeString(file, listing);
    ProcessBuilder pb = new ProcessBuilder("git", "mktree", "--missing").directory(bare.toFile())
        .redirectInput(file.toFile()).redirectErrorStream(true);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes()).strip();
    try {
      if (p.waitFor() != 0) {
        throw new IOException("git mktree: " + out);
      }
    } catch (InterruptedException e) {
      throw new IOException(e);
    }
    return out;
  }

  /** Commits everything in the work tree {@code work}; returns the commit. */
  private static String commitAll(Path work, String message) throws IOException {
    GitRepos.git(work, "add", "-A");
    GitRepos.git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
        "-m", message);
    return GitRepos.git(work, "rev-parse", "HEAD");
  }

  /** {@code git clone --depth 1} of the repository's default branch, as git itself makes it. */
  private static Path freshClone(String repository) throws IOException {
    Path fresh = Files.createTempDirectory(scratch, "fresh-").resolve("src");
    GitRepos.git(scratch, "clone", "-q", "--depth", "1", repos.path(repository).toUri().toString(),
        fresh.toString());
    return fresh;
  }

  /** Every file under {@code dir} but {@code .git}'s own, with its content and whether it runs. */
  private static java.util.SortedMap<String, String> tree(Path dir) throws IOException {
    java.util.SortedMap<String, String> files = new java.util.TreeMap<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path file : walk.filter(Files::isRegularFile).toList()) {
        String name = dir.relativize(file).toString();
        files.put(name.startsWith(".git/") ? ".git" : name, name.startsWith(".git/") ? ""
            : Files.readString(file) + (Files.isExecutable(file) ? " (x)" : ""));
      }
    }
    return files;
  }

  /** The ready checkout is made after the job, not while its build and push run. */
  @Test
  void theReadyCheckoutIsMadeOnceTheJobIsOver() throws Exception {
    Stage stage = readyStage("");
    String url = front.url("app.git");
    run(stage, job(newWorkspace(), url, "feature"));
    idle(stage);
    RecordingJobContext second = job(newWorkspace(), url, "feature");
    run(stage, second);
    Thread.sleep(500); // a background thread that had started would have made it by now
    assertEquals(List.of(), ready(), "made while the job ran");

    stage.cleanup(second);

    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(20);
    while (ready().isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertEquals(1, ready().size(), ready()::toString);
    assertFalse(Files.exists(second.workspace().resolve("src")), "the checkout left the workspace");
  }

  @Test
  void aReadyCheckoutThatIsNotWhatItsNameSaysIsNotServed() throws Exception {
    Stage stage = readyStage("");
    String url = server.url("app.git");
    run(stage, job(newWorkspace(), url, "feature"));
    run(stage, job(newWorkspace(), url, "feature"));
    idle(stage);
    Path made = ready().get(0);
    String moved = push("app.git", "feature", "claimed.txt", "claimed\n");
    // Claims to be of the new tip; holds the old one.
    String old = made.getFileName().toString();
    Files.move(made, made.resolveSibling(old.replaceAll("-[0-9a-f]{40}-", "-" + moved + "-")));

    RecordingJobContext ctx = job(newWorkspace(), url, "feature");
    run(stage, ctx);

    assertEquals(moved, sha(ctx));
    assertFalse(logged(ctx, "had ready"), ctx.lines()::toString);
    assertEquals("claimed\n", Files.readString(ctx.workspace().resolve("src/claimed.txt")));
  }

  @Test
  void readyCheckoutsCountTowardsTheBound() throws Exception {
    // A mirror of big-N takes about 50 KiB and its ready checkout about 100 KiB.
    long bound = 350 * 1024;
    Stage stage = readyStage("cache.max-size = " + bound);
    for (String repository : List.of("big-1.git", "big-1.git", "big-2.git", "big-2.git",
        "big-3.git", "big-3.git", "big-1.git")) {
      run(stage, job(newWorkspace(), server.url(repository), ""));
      idle(stage);
      long total = size(cacheDir.resolve("mirrors")) + size(cacheDir.resolve("ready"));
      assertTrue(total <= bound, "the cache holds " + total + " bytes after " + repository);
      Thread.sleep(20);
    }
    assertTrue(ready().size() >= 1, ready()::toString);
  }

  /**
   * When the job is over, the checkout is moved out of the workspace and deleted in the
   * background: the runtime, which deletes the workspace before it answers, finds it gone.
   */
  @Test
  void theCheckoutIsTakenAwayAtCleanUpAndDeletedInTheBackground() throws Exception {
    Stage stage = stage("");
    RecordingJobContext ctx = job(newWorkspace(), server.url("app.git"), "main");
    run(stage, ctx);
    Path src = ctx.workspace().resolve("src");
    assertTrue(Files.exists(src.resolve("Dockerfile")));

    stage.cleanup(ctx);

    assertFalse(Files.exists(src));
    idle(stage);
    try (Stream<Path> trash = Files.list(cacheDir.resolve("trash"))) {
      assertEquals(0, trash.count());
    }
    // Without a cache, the runtime's deletion of the workspace is left to do it.
    Stage off = stage("cache.enabled = false");
    RecordingJobContext plain = job(newWorkspace(), server.url("app.git"), "main");
    run(off, plain);
    off.cleanup(plain);
    assertTrue(Files.exists(plain.workspace().resolve("src/Dockerfile")));
  }

  @Test
  void aMirrorLargerThanTheBoundIsNotKeptButTheCloneWorks() throws Exception {
    Stage stage = stage("cache.max-size = 1KiB");
    RecordingJobContext ctx = job(newWorkspace(), server.url("big-1.git"), "");

    run(stage, ctx);

    assertEquals(repos.revParse("big-1.git", "HEAD"), sha(ctx));
    assertEquals(List.of(), mirrors());
    assertStandalone(ctx.workspace().resolve("src"));
  }

  /** Damage found by the fetch of a new commit, and by the copy when nothing is new. */
  @ParameterizedTest
  @CsvSource({"truncated pack, true", "truncated pack, false", "missing pack, true",
      "missing pack, false", "broken HEAD, true", "garbage ref, true", "garbage ref, false",
      "missing objects dir, false", "garbage shallow, true", "garbage shallow, false",
      "flipped pack bytes, false"})
  void aDamagedMirrorIsRebuiltFromTheServer(String damage, boolean moved) throws Exception {
    Stage stage = stage("");
    String url = server.url("app.git");
    run(stage, job(newWorkspace(), url, "main"));
    Path mirror = onlyMirror();
    Path pack = mirror.resolve("objects/pack").resolve(packs(mirror).get(0));
    switch (damage) {
      case "truncated pack" -> {
        pack.toFile().setWritable(true);
        try (RandomAccessFile file = new RandomAccessFile(pack.toFile(), "rw")) {
          file.setLength(file.length() / 2);
        }
      }
      case "missing pack" -> {
        Files.delete(pack);
        Files.delete(Path.of(pack.toString().replace(".pack", ".idx")));
      }
      case "broken HEAD" -> Files.writeString(mirror.resolve("HEAD"), "not a ref at all\n");
      case "garbage ref" -> {
        Path ref = mirror.resolve("refs/remotes/origin/main");
        assertTrue(Files.exists(ref), "no loose ref to break");
        Files.writeString(ref, "garbage\n");
      }
      case "missing objects dir" -> GitTestSupport.deleteTree(mirror.resolve("objects"));
      case "garbage shallow" -> Files.writeString(mirror.resolve("shallow"), "not an id\n");
      case "flipped pack bytes" -> {
        pack.toFile().setWritable(true);
        try (RandomAccessFile file = new RandomAccessFile(pack.toFile(), "rw")) {
          for (long at = 40; at < file.length() - 40; at += 97) {
            file.seek(at);
            int b = file.read();
            file.seek(at);
            file.write(b ^ 0x5a);
          }
        }
      }
      default -> throw new IllegalArgumentException(damage);
    }
    String tip = moved ? push("app.git", "main", "after-damage.txt", damage + "\n")
        : repos.revParse("app.git", "refs/heads/main");
    Path workspace = newWorkspace();
    RecordingJobContext ctx = job(workspace, url, "main");

    run(stage, ctx);

    ctx.lines().stream().filter(l -> l.contains("mirror"))
        .forEach(l -> System.out.println("[damage] " + damage + (moved ? ", moved: " : ": ") + l));
    assertEquals(tip, sha(ctx));
    if (moved) {
      assertEquals(damage + "\n", Files.readString(workspace.resolve("src/after-damage.txt")));
    }
    // A ref JGit cannot read is as good as none, and objects that are plainly missing are
    // fetched again: the mirror mends itself. Everything else is found out, and the mirror
    // replaced.
    if (!damage.equals("garbage ref") && !damage.equals("missing pack")) {
      assertTrue(logged(ctx, "removed it"), ctx.lines()::toString);
    }
    assertStandalone(workspace.resolve("src"));
    GitRepos.git(onlyMirror(), "fsck", "--no-dangling");
    // And it serves the next job again.
    RecordingJobContext next = job(newWorkspace(), url, "main");
    run(stage, next);
    assertTrue(logged(next, "nothing to fetch"), next.lines()::toString);
  }

  @Test
  void refsAndCommitsComeFromTheMirrorToo() throws Exception {
    Stage stage = stage("");
    String url = front.url("app.git");
    run(stage, job(newWorkspace(), url, "main"));
    String tip = repos.revParse("app.git", "refs/heads/main");

    // The tip of main, by commit_sha: the mirror has it.
    int wants = front.granted.size();
    RecordingJobContext atTip = exact(newWorkspace(), url, "", tip);
    run(stage, atTip);
    assertEquals(tip, sha(atTip));
    assertEquals(wants, front.granted.size(), "asked the server for the tip again");
    assertEquals("HEAD", GitRepos.git(atTip.workspace().resolve("src"), "rev-parse",
        "--abbrev-ref", "HEAD"));

    // An older commit, from a server that will not send it by id: searched for in main's
    // history, fetched into the mirror; the next job for it gets it from there.
    String older = repos.revParse("app.git", "refs/heads/main~4");
    RecordingJobContext search = exact(newWorkspace(), url, "", older);
    run(stage, search);
    assertEquals(older, sha(search));
    assertTrue(logged(search, "found commit " + older), search.lines()::toString);
    assertEquals("1", GitRepos.git(search.workspace().resolve("src"), "rev-list", "--count",
        "HEAD"));
    assertStandalone(search.workspace().resolve("src"));
    wants = front.granted.size();
    int refused = front.refused.size();
    RecordingJobContext again = exact(newWorkspace(), url, "", older);
    run(stage, again);
    assertEquals(older, sha(again));
    assertEquals(wants, front.granted.size());
    assertEquals(refused, front.refused.size());
    assertTrue(logged(again, "the worker's mirror has commit " + older + " already"),
        again.lines()::toString);

    // An annotated tag: fetched under its own name, and only it.
    RecordingJobContext tag = exact(newWorkspace(), url, "refs/tags/v1", "");
    run(stage, tag);
    Path src = tag.workspace().resolve("src");
    assertEquals(repos.revParse("app.git", "refs/tags/v1^{commit}"), sha(tag));
    assertEquals("refs/tags/v1", GitRepos.git(src, "for-each-ref", "--format=%(refname)"));
    assertEquals("tag", GitRepos.git(src, "cat-file", "-t", "refs/tags/v1"));
    assertEquals("true", GitRepos.git(src, "rev-parse", "--is-shallow-repository"));
    assertStandalone(src);
    RecordingJobContext tagAgain = exact(newWorkspace(), url, "refs/tags/v1", "");
    run(stage, tagAgain);
    assertTrue(logged(tagAgain, "the worker's mirror has ref refs/tags/v1"),
        tagAgain.lines()::toString);
    assertEquals("refs/tags/v1", GitRepos.git(tagAgain.workspace().resolve("src"),
        "for-each-ref", "--format=%(refname)"));
  }

  @Test
  void eachJobGetsItsOwnDepthWhateverTheMirrorHolds() throws Exception {
    Stage stage = stage("");
    String url = server.url("app.git");
    String tip = repos.revParse("app.git", "refs/heads/main");
    int all = Integer.parseInt(GitRepos.git(repos.path("app.git"), "rev-list", "--count", tip));

    RecordingJobContext one = job(newWorkspace(), url, "main");
    run(stage, one);
    RecordingJobContext five = job(newWorkspace(), url, "main")
        .options(StageOptions.of(Map.of("depth", "5")));
    run(stage, five);
    assertEquals("5", GitRepos.git(five.workspace().resolve("src"), "rev-list", "--count", "HEAD"));
    assertStandalone(five.workspace().resolve("src"));

    // The mirror holds five commits now; a depth-1 job still gets one.
    RecordingJobContext oneAgain = job(newWorkspace(), url, "main");
    run(stage, oneAgain);
    Path src = oneAgain.workspace().resolve("src");
    assertEquals("1", GitRepos.git(src, "rev-list", "--count", "HEAD"));
    assertEquals(List.of(tip), Files.readAllLines(src.resolve(".git/shallow")));
    assertTrue(logged(oneAgain, "nothing to fetch"), oneAgain.lines()::toString);

    RecordingJobContext whole = job(newWorkspace(), url, "main")
        .options(StageOptions.of(Map.of("depth", "0")));
    run(stage, whole);
    Path wholeSrc = whole.workspace().resolve("src");
    assertEquals(String.valueOf(all), GitRepos.git(wholeSrc, "rev-list", "--count", "HEAD"));
    assertEquals("false", GitRepos.git(wholeSrc, "rev-parse", "--is-shallow-repository"));
    assertStandalone(wholeSrc);

    // A complete mirror stays complete: a new commit comes alone, and depth 1 is still 1.
    String moved = push("app.git", "main", "late.txt", "late\n");
    RecordingJobContext late = job(newWorkspace(), url, "main");
    run(stage, late);
    assertEquals(moved, sha(late));
    assertEquals("1", GitRepos.git(late.workspace().resolve("src"), "rev-list", "--count",
        "HEAD"));
    assertEquals("false", GitRepos.git(onlyMirror(), "rev-parse", "--is-shallow-repository"));
  }

  /** The repository from the mirror, its submodules cloned and checked as without the cache. */
  @Test
  void submodulesOfACheckoutFromTheMirrorAreClonedAndChecked() throws Exception {
    Stage stage = stage("submodules = true");
    String url = server.url("super.git");
    run(stage, job(newWorkspace(), url, ""));
    Path workspace = newWorkspace();
    GitTestSupport.CheckedContext ctx =
        new GitTestSupport.CheckedContext(job(workspace, url, ""), u -> Optional.empty());

    run(stage, ctx);

    assertTrue(logged(ctx.delegate, "nothing to fetch"), ctx.delegate.lines()::toString);
    assertEquals(List.of(server.url("inner.git")), ctx.asked);
    Path src = workspace.resolve("src");
    assertEquals("inner\n", Files.readString(src.resolve("vendor/inner/inner.txt")));
    assertEquals(repos.revParse("inner.git", "HEAD"),
        GitRepos.git(src.resolve("vendor/inner"), "rev-parse", "HEAD"));
    // A caller who may not clone the submodule is refused from the mirror too.
    Path refusedWorkspace = newWorkspace();
    StageException e = assertThrows(StageException.class, () -> run(stage,
        new GitTestSupport.CheckedContext(job(refusedWorkspace, url, ""),
            u -> Optional.of("not in allowed-repositories"))));
    assertEquals("git.submodule-refused", e.code());
  }

  @Test
  void theSizeLimitHoldsForACheckoutFromAWarmMirror() throws Exception {
    run(stage(""), job(newWorkspace(), server.url("big-2.git"), ""));
    Path workspace = newWorkspace();

    StageException e = assertThrows(StageException.class,
        () -> run(stage("max-checkout-size = 32KiB"), job(workspace, server.url("big-2.git"), "")));

    assertEquals("git.repo-too-large", e.code());
    assertTrue(e.getMessage().contains("copied from the worker's mirror"), e.getMessage());
    assertFalse(Files.exists(workspace.resolve("src/blob-0.bin")));
  }

  @Test
  void aJobMayKeepItsCloneOffTheCache() throws Exception {
    RecordingJobContext ctx = job(newWorkspace(), server.url("app.git"), "main")
        .options(StageOptions.of(Map.of("cache", "false")));

    run(stage(""), ctx);

    assertEquals(repos.revParse("app.git", "refs/heads/main"), sha(ctx));
    assertEquals(List.of(), mirrors());
    assertFalse(logged(ctx, "mirror"), ctx.lines()::toString);
  }

  @Test
  void withTheCacheOffNoMirrorIsMade() throws Exception {
    RecordingJobContext ctx = job(newWorkspace(), server.url("app.git"), "main");

    run(stage("cache.enabled = false"), ctx);

    assertEquals(repos.revParse("app.git", "refs/heads/main"), sha(ctx));
    assertEquals(List.of(), mirrors());
  }

  @Test
  void aNewMirrorIsNotedForCleanUpAndBuiltOutOfPlace() throws Exception {
    RecordingJobContext ctx = job(newWorkspace(), server.url("app.git"), "main");

    run(stage(""), ctx);

    assertEquals(1, ctx.leftovers().size(), ctx.leftovers()::toString);
    String record = ctx.leftovers().get(0);
    assertTrue(record.startsWith("git-mirror-tmp " + cacheDir.toRealPath().resolve("tmp")),
        record);
    // Renamed into place once whole: nothing is left where it was built.
    assertFalse(Files.exists(Path.of(record.substring("git-mirror-tmp ".length()))));
    assertEquals(1, mirrors().size());
  }

  @Test
  void whatACrashedJobLeftIsRemoved() throws Exception {
    Stage stage = stage("");
    Path tmp = Files.createDirectories(cacheDir.resolve("tmp"));
    Path recorded = Files.createDirectories(tmp.resolve("a".repeat(64) + ".0123456789abcdef"));
    Files.writeString(recorded.resolve("HEAD"), "ref: refs/heads/main\n");
    List<String> log = new CopyOnWriteArrayList<>();

    stage.removeLeftovers(List.of("git-mirror-tmp " + recorded.toRealPath(), "other record"),
        new dev.slipway.worker.api.JobLog() {
          @Override
          public void line(String line) {
            log.add(line);
          }

          @Override
          public java.io.OutputStream lineStream() {
            return java.io.OutputStream.nullOutputStream();
          }
        });

    assertFalse(Files.exists(recorded));
    assertTrue(log.stream().anyMatch(l -> l.startsWith("removed the unfinished git mirror ")),
        log::toString);
    // One that no record names goes when a stage opens the cache.
    Path unrecorded = Files.createDirectories(tmp.resolve("b".repeat(64) + ".0123456789abcdef"));
    Path trash = Files.createDirectories(cacheDir.resolve("trash").resolve("old.git.1"));
    stage("");
    assertFalse(Files.exists(unrecorded));
    assertFalse(Files.exists(trash));
  }

  @Test
  void aJobWaitingForABusyMirrorStopsWhenCancelled() throws Exception {
    Stage stage = stage("");
    String url = server.url("big-3.git");
    server.throttle(8 * 1024); // the first clone takes several seconds
    try {
      RecordingJobContext first = job(newWorkspace(), url, "");
      AtomicReference<Throwable> firstOutcome = new AtomicReference<>();
      Thread a = start(stage, first, firstOutcome);
      awaitLine(first, "Receiving objects");

      RecordingJobContext second = job(newWorkspace(), url, "");
      AtomicReference<Throwable> secondOutcome = new AtomicReference<>();
      Thread b = start(stage, second, secondOutcome);
      Thread.sleep(300); // waiting for the mirror now
      long cancelled = System.nanoTime();
      second.cancel();
      b.interrupt();
      b.join(5_000);
      assertFalse(b.isAlive());
      assertTrue((System.nanoTime() - cancelled) / 1_000_000 < 1_000,
          "took " + (System.nanoTime() - cancelled) / 1_000_000 + " ms");
      assertTrue(secondOutcome.get() instanceof InterruptedException, String.valueOf(
          secondOutcome.get()));

      cancelled = System.nanoTime();
      first.cancel();
      a.interrupt();
      a.join(5_000);
      assertFalse(a.isAlive());
      assertTrue((System.nanoTime() - cancelled) / 1_000_000 < 1_000);
      assertTrue(firstOutcome.get() instanceof InterruptedException,
          String.valueOf(firstOutcome.get()));
      // The mirror it was building is gone, not half there.
      assertEquals(List.of(), mirrors());
      try (Stream<Path> tmp = Files.list(cacheDir.resolve("tmp"))) {
        assertEquals(0, tmp.count());
      }
    } finally {
      server.throttle(0);
    }
  }

  @Test
  void aJobCancelledWhileFetchingIntoAMirrorLeavesItWholeAndUsable() throws Exception {
    Stage stage = stage("");
    String url = server.url("cancelled.git");
    run(stage, job(newWorkspace(), url, ""));
    Path mirror = onlyMirror();
    String before = GitRepos.git(mirror, "for-each-ref");
    // What is new is large and incompressible, so the fetch takes seconds at this rate.
    byte[] noise = new byte[96 * 1024];
    new java.util.Random(7).nextBytes(noise);
    String moved = push("cancelled.git", "main", "noise.txt",
        Base64.getEncoder().encodeToString(noise));
    server.throttle(8 * 1024);
    RecordingJobContext cancelled = job(newWorkspace(), url, "");
    AtomicReference<Throwable> outcome = new AtomicReference<>();
    Thread t;
    try {
      t = start(stage, cancelled, outcome);
      awaitLine(cancelled, "Receiving objects");
      cancelled.cancel();
      t.interrupt();
      t.join(5_000);
    } finally {
      server.throttle(0);
    }
    assertFalse(t.isAlive());
    assertTrue(outcome.get() instanceof InterruptedException, String.valueOf(outcome.get()));

    // The mirror is as it was: its refs unchanged, every object there, nothing half-written.
    assertEquals(List.of(mirror), mirrors());
    assertEquals(before, GitRepos.git(mirror, "for-each-ref"));
    GitRepos.git(mirror, "fsck", "--full", "--no-dangling");
    try (Stream<Path> walk = Files.walk(mirror.resolve("objects"))) {
      List<String> partial = walk.map(p -> p.getFileName().toString())
          .filter(n -> n.startsWith("incoming_") || n.startsWith("tmp_") || n.endsWith(".tmp"))
          .toList();
      assertEquals(List.of(), partial);
    }
    // The next job uses it: it fetches what is new into it, nothing rebuilt.
    RecordingJobContext next = job(newWorkspace(), url, "");
    run(stage, next);
    assertEquals(moved, sha(next));
    assertTrue(logged(next, "fetched what is new of branch main into the worker's mirror"),
        next.lines()::toString);
    assertFalse(logged(next, "damaged"), next.lines()::toString);
    assertStandalone(next.workspace().resolve("src"));
  }

  @Test
  void aMirrorBusyPastTheLockTimeoutIsBypassed() throws Exception {
    Stage stage = stage("cache.lock-timeout = 300ms");
    String url = server.url("big-1.git");
    RecordingJobContext first = job(newWorkspace(), url, "");
    AtomicReference<Throwable> firstOutcome = new AtomicReference<>();
    RecordingJobContext second = job(newWorkspace(), url, "");
    AtomicReference<Throwable> secondOutcome = new AtomicReference<>();
    Thread a;
    Thread b;
    server.throttle(12 * 1024); // the first job holds the mirror for seconds
    try {
      a = start(stage, first, firstOutcome);
      awaitLine(first, "Receiving objects");
      b = start(stage, second, secondOutcome);
      awaitLine(second, "cloning without it");
    } finally {
      server.throttle(0);
    }
    b.join(30_000);
    a.join(30_000);

    assertEquals(null, secondOutcome.get());
    assertEquals(repos.revParse("big-1.git", "HEAD"), sha(second));
    assertTrue(logged(second, "longer than cache.lock-timeout; cloning without it"),
        second.lines()::toString);
    assertEquals(null, firstOutcome.get());
    assertEquals(1, mirrors().size());
  }

  @Test
  void manySmallFetchesAreRepackedInTheBackground() throws Exception {
    Stage stage = stage("");
    String url = server.url("public.git");
    run(stage, job(newWorkspace(), url, ""));
    String last = null;
    for (int i = 0; i < 18; i++) {
      last = push("public.git", "main", "n.txt", i + "\n");
      run(stage, job(newWorkspace(), url, ""));
    }
    // 19 fetches, one pack each, unless repacked (once past 16, then a few more since).
    Path mirror = onlyMirror();
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (packs(mirror).size() > 4 && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertTrue(packs(mirror).size() <= 4, packs(mirror)::toString);
    GitRepos.git(mirror, "fsck", "--no-dangling");
    RecordingJobContext after = job(newWorkspace(), url, "");
    run(stage, after);
    assertEquals(last, sha(after));
    assertTrue(logged(after, "nothing to fetch"), after.lines()::toString);
    assertStandalone(after.workspace().resolve("src"));
  }

  private static Thread start(Stage stage, RecordingJobContext ctx,
      AtomicReference<Throwable> outcome) {
    Thread t = new Thread(() -> {
      try {
        run(stage, ctx);
      } catch (Throwable e) {
        outcome.set(e);
      }
    });
    t.start();
    return t;
  }

  private static void awaitLine(RecordingJobContext ctx, String fragment) throws Exception {
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (!logged(ctx, fragment)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no line with '" + fragment + "': " + ctx.lines());
      }
      Thread.sleep(10);
    }
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}

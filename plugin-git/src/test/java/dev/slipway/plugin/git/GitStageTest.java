package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The git stage against real git over smart HTTP on 127.0.0.1: what it clones and how it fails. */
class GitStageTest {
  private static final String TOKEN = "ghp_stage-test-token-0123456789";
  private static final int HISTORY = 300;

  @TempDir static Path repoRoot;
  private static GitRepos repos;
  private static GitHttpServer server;

  @TempDir Path workspace;

  @BeforeAll
  static void startServer() throws Exception {
    repos = new GitRepos(repoRoot);
    repos
        .repository("app.git")
        .file("Dockerfile", "FROM local/busybox:1\nCMD [\"echo\", \"hello from main\"]\n")
        .file("README.md", "# app\n")
        .commit("initial")
        .commits(3)
        .branch("feature")
        .file("feature.txt", "only on feature\n")
        .commit("feature work")
        .branch("release/1.2")
        .file("release.txt", "1.2\n")
        .commit("release 1.2")
        .build();
    repos.repository("trunk.git").defaultBranch("trunk").file("on-trunk.txt", "t\n").commit("c").build();
    repos.repository("history.git").file("Dockerfile", "FROM scratch\n").commit("initial")
        .commits(HISTORY).build();
    repos.repository("public.git").file("README.md", "public\n").commit("initial").build();
    repos.repository("forbidden.git").file("README.md", "secret\n").commit("initial").build();
    repos.repository("empty.git").build();
    server =
        GitHttpServer.builder(repos.root())
            .credentials("x-access-token", TOKEN)
            .anonymous("public.git")
            .forbidden("forbidden.git")
            .start();
  }

  @AfterAll
  static void stopServer() {
    server.close();
  }

  @Test
  void clonesTheDefaultBranchAndPublishesCheckoutAndSha() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", TOKEN);

    run(stage(), ctx);

    Path src = workspace.resolve("src");
    assertEquals(src, ctx.get(StageKeys.SOURCE_DIR).orElseThrow());
    assertEquals(repos.revParse("app.git", "refs/heads/main"), ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
    assertTrue(Files.readString(src.resolve("Dockerfile")).contains("hello from main"));
    assertFalse(Files.exists(src.resolve("feature.txt")));
    assertEquals("main", GitRepos.git(src, "rev-parse", "--abbrev-ref", "HEAD"));
    // Single-branch: the other branches were never fetched.
    assertEquals("origin/main", GitRepos.git(src, "branch", "-r", "--format=%(refname:short)"));
    assertTrue(ctx.lines().stream().anyMatch(l -> l.startsWith("checked out main at ")), ctx.lines()::toString);
  }

  @Test
  void followsTheRemotesDefaultBranchWhateverItsName() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("trunk.git"), "", TOKEN);

    run(stage(), ctx);

    assertEquals(repos.revParse("trunk.git", "refs/heads/trunk"), ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
    assertTrue(Files.exists(workspace.resolve("src/on-trunk.txt")));
  }

  @Test
  void clonesANamedBranch() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "feature", TOKEN);

    run(stage(), ctx);

    assertEquals(repos.revParse("app.git", "refs/heads/feature"), ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
    assertTrue(Files.exists(workspace.resolve("src/feature.txt")));
    assertEquals("feature", GitRepos.git(workspace.resolve("src"), "rev-parse", "--abbrev-ref", "HEAD"));
  }

  @Test
  void clonesABranchWithASlash() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "release/1.2", TOKEN);

    run(stage(), ctx);

    assertEquals(repos.revParse("app.git", "refs/heads/release/1.2"), ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
  }

  @Test
  void missingBranchIsBranchNotFoundAndNamesTheExistingOnes() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "no-such-branch", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.branch-not-found", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().contains("'no-such-branch'"), e.getMessage());
    assertTrue(e.getMessage().contains("[feature, main, release/1.2]"), e.getMessage());
    // Found out before anything was written.
    assertFalse(Files.exists(workspace.resolve("src")));
  }

  @Test
  void emptyRepositoryHasNoDefaultBranch() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("empty.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.branch-not-found", e.code());
    assertTrue(e.getMessage().contains("has no default branch"), e.getMessage());
  }

  @Test
  void wrongTokenIsAuthFailed() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", "wrong-token");

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.auth-failed", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertFalse(e.retryable(), "the same token fails the same way");
    assertTrue(e.getMessage().contains("refused the github_token"), e.getMessage());
    assertFalse(e.getMessage().contains("wrong-token"), e.getMessage());
  }

  @Test
  void aShortWrongTokenDoesNotGarbleTheMessage() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", "tok");

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertTrue(e.getMessage().contains("refused the github_token (HTTP 401)"), e.getMessage());
  }

  @Test
  void privateRepositoryWithoutTokenIsAuthFailed() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", null);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.auth-failed", e.code());
    assertTrue(e.getMessage().contains("has no github_token"), e.getMessage());
  }

  @Test
  void forbiddenRepositoryIsAuthFailed() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("forbidden.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.auth-failed", e.code());
    assertTrue(e.getMessage().contains("HTTP 403"), e.getMessage());
  }

  @Test
  void publicRepositoryNeedsNoToken() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("public.git"), "", null);

    run(stage(), ctx);

    assertEquals(repos.revParse("public.git", "HEAD"), ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
  }

  @Test
  void missingRepositoryIsRepoNotFound() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("no-such-repo.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.repo-not-found", e.code());
    assertTrue(e.getMessage().contains("no repository at " + server.url("no-such-repo.git")), e.getMessage());
  }

  @Test
  void closedPortIsUnreachable() throws Exception {
    int port;
    try (ServerSocket socket = new ServerSocket(0, 1, loopback())) {
      port = socket.getLocalPort();
    }
    RecordingJobContext ctx = context(workspace, "http://127.0.0.1:" + port + "/app.git", "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.unreachable", e.code());
    assertEquals(ErrorKind.EXTERNAL, e.kind());
    assertTrue(e.retryable(), "a server that cannot be reached may answer later");
    assertTrue(e.getMessage().contains("cannot reach 127.0.0.1:" + port + " (connection refused)"), e.getMessage());
  }

  @Test
  void serverThatNeverAnswersIsUnreachableAfterTheConnectTimeout() throws Exception {
    // Accepts connections (the kernel completes them) but never reads or answers.
    try (ServerSocket silent = new ServerSocket(0, 10, loopback())) {
      RecordingJobContext ctx =
          context(workspace, "http://127.0.0.1:" + silent.getLocalPort() + "/app.git", "", TOKEN);
      long start = System.nanoTime();

      StageException e =
          assertThrows(StageException.class, () -> run(stage("connect-timeout = 700ms"), ctx));

      long millis = (System.nanoTime() - start) / 1_000_000;
      assertEquals("git.unreachable", e.code());
      assertTrue(e.getMessage().contains("no answer in time"), e.getMessage());
      assertTrue(millis >= 650 && millis < 3_000, "took " + millis + " ms");
    }
  }

  @Test
  void depthOneFetchesExactlyOneCommit() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("history.git"), "", TOKEN);

    run(stage(), ctx);

    Path src = workspace.resolve("src");
    assertEquals("1", GitRepos.git(src, "rev-list", "--count", "HEAD"));
    List<String> shallow = Files.readAllLines(src.resolve(".git/shallow"));
    assertEquals(List.of(repos.revParse("history.git", "HEAD")), shallow);
  }

  @Test
  void depthZeroFetchesTheWholeHistory() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("history.git"), "", TOKEN);

    run(stage("depth = 0"), ctx);

    Path src = workspace.resolve("src");
    assertEquals(String.valueOf(HISTORY + 1), GitRepos.git(src, "rev-list", "--count", "HEAD"));
    assertFalse(Files.exists(src.resolve(".git/shallow")));
    assertTrue(ctx.lines().get(0).contains("full history"), ctx.lines().get(0));
  }

  @Test
  void depthIsConfigurable() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("history.git"), "", TOKEN);

    run(stage("depth = 10"), ctx);

    assertEquals("10", GitRepos.git(workspace.resolve("src"), "rev-list", "--count", "HEAD"));
  }

  @Test
  void tokenGoesAsBasicCredentialsOnly() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", TOKEN);
    int before = server.requests().size();

    run(stage(), ctx);

    List<GitHttpServer.Request> requests = server.requests().subList(before, server.requests().size());
    assertTrue(requests.stream().anyMatch(r -> r.user().equals("x-access-token") && r.status() == 200), requests::toString);
    assertTrue(requests.stream().noneMatch(r -> r.uri().contains(TOKEN)), requests::toString);
  }

  static InetAddress loopback() throws Exception {
    return InetAddress.getByAddress(new byte[] {127, 0, 0, 1});
  }

  static Stream<Path> files(Path root) throws Exception {
    return Files.walk(root).filter(Files::isRegularFile);
  }
}

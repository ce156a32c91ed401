package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.plugin.git.GitTestSupport.CheckedContext;
import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Submodules: off by default, cloned when configured, and held to the same URL rules. */
class GitSubmoduleTest {
  private static final String TOKEN = "submodule-test-token";

  @TempDir static Path repoRoot;
  private static GitHttpServer server;

  @TempDir Path workspace;

  @BeforeAll
  static void startServer() throws Exception {
    GitRepos repos = new GitRepos(repoRoot);
    repos.repository("inner.git").file("inner.txt", "inner\n").commit("inner").build();
    String inner = repos.revParse("inner.git", "HEAD");
    repos.repository("lib.git").file("lib.txt", "library\n").commit("lib")
        .submodule("inner", "../inner.git", inner).commit("nested").build();
    String lib = repos.revParse("lib.git", "HEAD");
    repos.repository("app.git").file("Dockerfile", "FROM scratch\n")
        .submodule("vendor/lib", "../lib.git", lib).commit("app").build();
    repos.repository("local.git").file("Dockerfile", "FROM scratch\n")
        .submodule("etc", "file:///etc", lib).commit("reads the worker's disk").build();
    repos.repository("ext.git").file("Dockerfile", "FROM scratch\n")
        .submodule("x", "ext::sh -c touch% /tmp/slipway-pwned", lib).commit("runs a program").build();
    repos.repository("other.git").file("other.txt", "other\n").commit("other").build();
    String other = repos.revParse("other.git", "HEAD");
    repos.repository("super.git").file("Dockerfile", "FROM scratch\n")
        .submodule("deps/other", "../other.git", other).commit("super").build();
    // Resolved against the parent's URL, this is http://H/x/../../evil.git.
    repos.repository("dots.git").file("Dockerfile", "FROM scratch\n")
        .submodule("x", "../x/../../evil.git", lib).commit("leaves its scope").build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
  }

  @AfterAll
  static void stopServer() {
    server.close();
  }

  @Test
  void submodulesAreNotClonedByDefault() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", TOKEN);

    run(stage(), ctx);

    Path lib = workspace.resolve("src/vendor/lib");
    assertFalse(Files.exists(lib.resolve("lib.txt")));
  }

  @Test
  void submodulesAreClonedRecursivelyWhenConfigured() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", TOKEN);

    run(stage("submodules = true"), ctx);

    assertEquals("library\n", Files.readString(workspace.resolve("src/vendor/lib/lib.txt")));
    assertEquals("inner\n", Files.readString(workspace.resolve("src/vendor/lib/inner/inner.txt")));
  }

  @Test
  void submoduleOnTheWorkersDiskIsRefused() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("local.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage("submodules = true"), ctx));

    assertEquals("git.submodule-refused", e.code());
    assertTrue(e.getMessage().contains("submodule 'etc': URL file: URLs are refused"), e.getMessage());
    assertFalse(Files.exists(workspace.resolve("src/etc/passwd")));
  }

  @Test
  void submoduleWithACommandTransportIsRefused() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("ext.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage("submodules = true"), ctx));

    assertEquals("git.submodule-refused", e.code());
    assertTrue(e.getMessage().contains("'<transport>::' syntax"), e.getMessage());
    assertFalse(Files.exists(Path.of("/tmp/slipway-pwned")));
  }

  /**
   * A submodule must not lead the job to a repository its caller may not clone: the caller's
   * repository check is asked for the submodule's URL, resolved against the superproject's, and
   * a refusal stops the clone before any request for the submodule.
   */
  @Test
  void submoduleTheCallerMayNotCloneIsRefusedBeforeAnyRequestForIt() throws Exception {
    CheckedContext ctx =
        new CheckedContext(
            context(workspace, server.url("super.git"), "", TOKEN),
            url ->
                url.contains("/other")
                    ? Optional.of("repo_url " + url + " is not in caller 'ci' allowed-repositories")
                    : Optional.empty());
    int before = server.requests().size();

    StageException e = assertThrows(StageException.class, () -> run(stage("submodules = true"), ctx));

    assertEquals("git.submodule-refused", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(
        e.getMessage().contains("submodule 'deps/other' (" + server.url("other.git") + ") may not be cloned"
            + " for this job's caller: repo_url " + server.url("other.git")
            + " is not in caller 'ci' allowed-repositories"),
        e.getMessage());
    assertTrue(e.getMessage().contains("worker.stages.git.submodules = false"), e.getMessage());
    assertEquals(List.of(server.url("other.git")), ctx.asked);
    List<GitHttpServer.Request> requests = server.requests().subList(before, server.requests().size());
    assertTrue(requests.stream().anyMatch(r -> r.uri().startsWith("/super.git/")), requests::toString);
    assertTrue(requests.stream().noneMatch(r -> r.uri().contains("other.git")), requests::toString);
    assertFalse(Files.exists(workspace.resolve("src/deps/other/other.txt")));
  }

  @Test
  void submoduleTheCallerMayCloneIsCloned() throws Exception {
    CheckedContext ctx =
        new CheckedContext(context(workspace, server.url("super.git"), "", TOKEN), url -> Optional.empty());

    run(stage("submodules = true"), ctx);

    assertEquals(List.of(server.url("other.git")), ctx.asked);
    assertEquals("other\n", Files.readString(workspace.resolve("src/deps/other/other.txt")));
  }

  @Test
  void theCallerIsNotAskedWhenSubmodulesAreOff() throws Exception {
    CheckedContext ctx =
        new CheckedContext(
            context(workspace, server.url("super.git"), "", TOKEN), url -> Optional.of("no"));

    run(stage(), ctx);

    assertEquals(List.of(), ctx.asked);
    assertTrue(Files.exists(workspace.resolve("src/Dockerfile")));
  }

  /** Nested submodules are asked about too, each before it is fetched. */
  @Test
  void nestedSubmoduleTheCallerMayNotCloneIsRefused() throws Exception {
    CheckedContext ctx =
        new CheckedContext(
            context(workspace, server.url("app.git"), "", TOKEN),
            url -> url.endsWith("/inner.git") ? Optional.of("not allowed") : Optional.empty());
    int before = server.requests().size();

    StageException e = assertThrows(StageException.class, () -> run(stage("submodules = true"), ctx));

    assertEquals("git.submodule-refused", e.code());
    assertTrue(e.getMessage().contains("submodule 'inner' (" + server.url("inner.git") + ")"), e.getMessage());
    assertEquals(List.of(server.url("lib.git"), server.url("inner.git")), ctx.asked);
    List<GitHttpServer.Request> requests = server.requests().subList(before, server.requests().size());
    assertTrue(requests.stream().noneMatch(r -> r.uri().contains("inner.git")), requests::toString);
    assertEquals("library\n", Files.readString(workspace.resolve("src/vendor/lib/lib.txt")));
  }

  /** A relative URL that, resolved, still has dot segments breaks the URL rules. */
  @Test
  void submoduleWhosePathLeavesItsScopeIsRefused() throws Exception {
    CheckedContext ctx =
        new CheckedContext(context(workspace, server.url("dots.git"), "", TOKEN), url -> Optional.empty());
    int before = server.requests().size();

    StageException e = assertThrows(StageException.class, () -> run(stage("submodules = true"), ctx));

    assertEquals("git.submodule-refused", e.code());
    assertTrue(e.getMessage().contains("submodule 'x': URL has a '..' segment in its path"), e.getMessage());
    assertEquals(List.of(), ctx.asked);
    List<GitHttpServer.Request> requests = server.requests().subList(before, server.requests().size());
    assertTrue(requests.stream().noneMatch(r -> r.uri().contains("evil")), requests::toString);
  }

  @Test
  void refusedSubmodulesDoNotMatterWhenSubmodulesAreOff() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("local.git"), "", TOKEN);

    run(stage(), ctx);

    assertTrue(Files.exists(workspace.resolve("src/Dockerfile")));
  }
}

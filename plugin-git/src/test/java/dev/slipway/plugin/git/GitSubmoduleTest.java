package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.StageException;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Files;
import java.nio.file.Path;
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

  @Test
  void refusedSubmodulesDoNotMatterWhenSubmodulesAreOff() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("local.git"), "", TOKEN);

    run(stage(), ctx);

    assertTrue(Files.exists(workspace.resolve("src/Dockerfile")));
  }
}

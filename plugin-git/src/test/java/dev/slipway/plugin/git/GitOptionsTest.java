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
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The per-job options {@code git.depth} and {@code git.submodules}, against real git over smart
 * HTTP on 127.0.0.1: they override the configuration for one job, and their absence leaves it in
 * force.
 */
class GitOptionsTest {
  private static final String TOKEN = "ghp_options-test-token-0123456789";
  /** Commits in five.git. */
  private static final int COMMITS = 5;

  @TempDir static Path repoRoot;
  private static GitHttpServer server;

  @TempDir Path workspace;

  @BeforeAll
  static void startServer() throws Exception {
    GitRepos repos = new GitRepos(repoRoot);
    repos.repository("five.git").file("Dockerfile", "FROM scratch\n").commit("initial")
        .commits(COMMITS - 1).build();
    repos.repository("lib.git").file("lib.txt", "library\n").commit("lib").build();
    String lib = repos.revParse("lib.git", "HEAD");
    repos.repository("app.git").file("Dockerfile", "FROM scratch\n")
        .submodule("vendor/lib", "../lib.git", lib).commit("app").build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
  }

  @AfterAll
  static void stopServer() {
    server.close();
  }

  private RecordingJobContext job(String repository, Map<String, String> options) {
    return context(workspace, server.url(repository), "", TOKEN)
        .options(StageOptions.of(options));
  }

  private long commitsInCheckout() throws Exception {
    return Long.parseLong(GitRepos.git(workspace.resolve("src"), "rev-list", "--count", "HEAD"));
  }

  @Test
  void theFactoryDeclaresItsOptions() {
    List<StageOption> options = new GitStageFactory().options();

    assertEquals(List.of("depth", "submodules", "cache"),
        options.stream().map(StageOption::name).toList());
    StageOption depth = options.get(0);
    assertEquals(StageOption.Type.INTEGER, depth.type());
    assertEquals(Optional.empty(), depth.refusal("0"));
    assertEquals(Optional.empty(), depth.refusal("1000000"));
    assertTrue(depth.refusal("-1").isPresent());
    assertTrue(depth.refusal("1000001").isPresent());
    assertTrue(depth.defaultValue().contains("worker.stages.git.depth"), depth.defaultValue());
    StageOption submodules = options.get(1);
    assertEquals(StageOption.Type.BOOLEAN, submodules.type());
    assertTrue(
        submodules.defaultValue().contains("worker.stages.git.submodules"),
        submodules.defaultValue());
    StageOption cache = options.get(2);
    assertEquals(StageOption.Type.BOOLEAN, cache.type());
    assertTrue(cache.defaultValue().contains("worker.stages.git.cache.enabled"), cache.defaultValue());
    assertTrue(options.stream().noneMatch(StageOption::isSecret));
  }

  @Test
  void theCommitsTimeIsPublishedForTheBuildsCreationLabel() throws Exception {
    RecordingJobContext ctx = job("five.git", Map.of());

    run(stage(), ctx);

    long committed =
        Long.parseLong(GitRepos.git(workspace.resolve("src"), "log", "-1", "--format=%ct"));
    assertEquals(Optional.of(java.time.Instant.ofEpochSecond(committed)),
        ctx.get(dev.slipway.worker.api.StageKeys.COMMIT_TIME));
  }

  @Test
  void depthOptionFetchesThatManyCommits() throws Exception {
    RecordingJobContext ctx = job("five.git", Map.of("depth", "3"));

    run(stage(), ctx);

    assertEquals(3, commitsInCheckout());
    assertTrue(Files.exists(workspace.resolve("src/.git/shallow")));
    assertTrue(ctx.lines().get(0).contains(", depth 3"), ctx.lines().get(0));
  }

  @Test
  void depthOptionZeroFetchesTheWholeHistoryOverAShallowConfiguration() throws Exception {
    RecordingJobContext ctx = job("five.git", Map.of("depth", "0"));

    run(stage("depth = 2"), ctx);

    assertEquals(COMMITS, commitsInCheckout());
    assertFalse(Files.exists(workspace.resolve("src/.git/shallow")));
    assertTrue(ctx.lines().get(0).contains("full history"), ctx.lines().get(0));
  }

  @Test
  void depthOptionOverridesAFullHistoryConfiguration() throws Exception {
    run(stage("depth = 0"), job("five.git", Map.of("depth", "1")));

    assertEquals(1, commitsInCheckout());
  }

  @Test
  void withoutTheDepthOptionTheConfiguredDepthHolds() throws Exception {
    run(stage("depth = 2"), job("five.git", Map.of()));

    assertEquals(2, commitsInCheckout());
  }

  @Test
  void withoutTheDepthOptionTheDefaultDepthIsOne() throws Exception {
    run(stage(), job("five.git", Map.of("submodules", "false")));

    assertEquals(1, commitsInCheckout());
  }

  @Test
  void submodulesOptionClonesSubmodulesWhenTheConfigurationSaysNo() throws Exception {
    RecordingJobContext ctx = job("app.git", Map.of("submodules", "true"));

    run(stage("submodules = false"), ctx);

    assertEquals("library\n", Files.readString(workspace.resolve("src/vendor/lib/lib.txt")));
    assertTrue(ctx.lines().get(0).contains("with submodules"), ctx.lines().get(0));
  }

  @Test
  void submodulesOptionFalseSkipsSubmodulesWhenTheConfigurationSaysYes() throws Exception {
    run(stage("submodules = true"), job("app.git", Map.of("submodules", "false")));

    assertTrue(Files.exists(workspace.resolve("src/Dockerfile")));
    assertFalse(Files.exists(workspace.resolve("src/vendor/lib/lib.txt")));
  }

  @Test
  void withoutTheSubmodulesOptionTheConfigurationHolds() throws Exception {
    run(stage(), job("app.git", Map.of()));
    assertFalse(Files.exists(workspace.resolve("src/vendor/lib/lib.txt")));
  }

  @Test
  void withoutTheSubmodulesOptionConfiguredSubmodulesAreCloned() throws Exception {
    run(stage("submodules = true"), job("app.git", Map.of("depth", "1")));

    assertEquals("library\n", Files.readString(workspace.resolve("src/vendor/lib/lib.txt")));
  }

  /**
   * A job that turns submodules on is held to its caller's allowed-repositories for each of
   * them, exactly as when the configuration turns them on: refused before any request for it.
   */
  @Test
  void submodulesOptionStillAsksTheCallersScopesForEverySubmodule() throws Exception {
    CheckedContext ctx =
        new CheckedContext(
            job("app.git", Map.of("submodules", "true")),
            url ->
                url.endsWith("/lib.git")
                    ? Optional.of("repo_url " + url + " is not in caller 'ci' allowed-repositories")
                    : Optional.empty());
    int before = server.requests().size();

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.submodule-refused", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertFalse(e.retryable());
    assertTrue(
        e.getMessage().contains("submodule 'vendor/lib' (" + server.url("lib.git") + ") may not be"
            + " cloned for this job's caller: repo_url " + server.url("lib.git")
            + " is not in caller 'ci' allowed-repositories"),
        e.getMessage());
    assertTrue(e.getMessage().contains("stage_options git.submodules = false"), e.getMessage());
    assertEquals(List.of(server.url("lib.git")), ctx.asked);
    List<GitHttpServer.Request> requests =
        server.requests().subList(before, server.requests().size());
    assertTrue(requests.stream().noneMatch(r -> r.uri().contains("lib.git")), requests::toString);
    assertFalse(Files.exists(workspace.resolve("src/vendor/lib/lib.txt")));
  }

  @Test
  void submodulesOptionClonesWhatTheCallersScopesAllow() throws Exception {
    CheckedContext ctx =
        new CheckedContext(job("app.git", Map.of("submodules", "true")), url -> Optional.empty());

    run(stage(), ctx);

    assertEquals(List.of(server.url("lib.git")), ctx.asked);
    assertEquals("library\n", Files.readString(workspace.resolve("src/vendor/lib/lib.txt")));
  }

  /** The runtime checks options at admission; the stage still refuses one that slipped past. */
  @Test
  void anOutOfRangeDepthIsRefusedBeforeAnyRequest() throws Exception {
    int before = server.requests().size();
    for (String depth : List.of("-1", "1000001", "deep")) {
      RecordingJobContext ctx = job("five.git", Map.of("depth", depth));

      StageException e = assertThrows(StageException.class, () -> stage().execute(ctx));

      assertEquals("git.invalid-request", e.code());
      assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
      assertTrue(
          e.getMessage().contains("stage_options git.depth: '" + depth
              + "' is not a whole number from 0 to 1000000"),
          e.getMessage());
    }
    assertEquals(before, server.requests().size());
  }
}

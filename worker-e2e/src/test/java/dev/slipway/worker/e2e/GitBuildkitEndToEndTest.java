package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.LocalRegistry;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A job over gRPC to a worker whose pipeline is [git, buildkit, docker-push] clones a private
 * repository from a loopback git server with a token, builds it under a job-private name (a RUN
 * step with no network) and pushes it with static credentials; pulled back by its digest, the
 * image runs and prints what the repository's Dockerfile made it print, and the engine keeps no
 * name of the job's. Real git server, real JGit, real Docker engine and registry.
 */
class GitBuildkitEndToEndTest {
  private static final String TOKEN = "ghp_e2eToken" + UUID.randomUUID().toString().replace("-", "");

  @TempDir Path dir;
  DockerEngine engine;
  LocalRegistry registry;
  GitHttpServer gitServer;
  Worker worker;
  ManagedChannel channel;
  final List<String> images = new ArrayList<>();

  @BeforeEach
  void engine() {
    engine = DockerEngine.fromEnvironment();
    Optional<String> skip = engine.skipReason();
    assumeTrue(skip.isEmpty(), () -> "skipped: " + skip.orElse(""));
    registry = LocalRegistry.fromEnvironment();
    Optional<String> noRegistry = registry.skipReason();
    assumeTrue(noRegistry.isEmpty(), () -> "skipped: " + noRegistry.orElse(""));
  }

  @AfterEach
  void stop() throws Exception {
    TestWorkers.close(worker, channel);
    if (gitServer != null) {
      gitServer.close();
    }
    if (engine != null && engine.isAvailable()) {
      engine.removeImages(images.toArray(String[]::new));
    }
  }

  @Test
  void jobClonesWithATokenAndBuildsAnImageThatRuns() throws Exception {
    String greeting = "hello from slipway " + UUID.randomUUID();
    GitRepos repos = new GitRepos(dir.resolve("repos"));
    repos.repository("app.git")
        .file("Dockerfile", "FROM local/busybox:1\n"
            + "ARG GREETING_SUFFIX=none\n"
            + "COPY greeting.txt /greeting.txt\n"
            + "RUN echo \"suffix=$GREETING_SUFFIX\" >> /greeting.txt\n"
            + "CMD [\"cat\", \"/greeting.txt\"]\n")
        .file(".dockerignore", ".git\n")
        .file("greeting.txt", greeting + "\n")
        .commit("first")
        .build();
    String sha = repos.revParse("app.git", "HEAD");
    gitServer = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();

    Path repoRoot = Path.of("..").toAbsolutePath().normalize();
    Path conf = TestWorkers.config(dir, "worker.pipeline = [git, buildkit, docker-push]\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.buildkit.docker-cli = \"" + engine.cli() + "\"\n"
        + "worker.stages.buildkit.docker-host = \"" + engine.host().orElseThrow() + "\"\n"
        // The engine here has no bridge; the RUN step needs no network anyway.
        + "worker.stages.buildkit.network = none\n"
        + "worker.stages.docker-push { docker-host = \"" + engine.host().orElseThrow() + "\","
        + " registry = \"" + registry.address() + "\", retry.max-attempts = 1,"
        + " auth { username = \"" + registry.user() + "\", password = \"" + registry.password()
        + "\" } }\n");
    worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, Environment.of(Map.of()),
        new Properties(), repoRoot), PluginRegistry.discover(), null);
    worker.start();
    channel = TestWorkers.channel(worker);

    String image = "slipway-e2e/app:" + UUID.randomUUID().toString().substring(0, 8);
    images.add(image);
    List<JobEvent> events = new ArrayList<>();
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES)
        .streamJob(TestWorkers.request()
            .setRepoUrl(gitServer.url("app.git"))
            .setGithubToken(TOKEN)
            .setImageName(image)
            .putBuildArgs("GREETING_SUFFIX", "e2e")
            .build())
        .forEachRemaining(events::add);

    JobResponse result = events.get(events.size() - 1).getResult();
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, result.getOutcome(), result.toString());
    assertEquals(sha, result.getCommitSha());
    assertEquals(List.of("git", "buildkit", "docker-push"),
        result.getStagesList().stream().map(s -> s.getStage()).toList());
    assertTrue(events.stream().anyMatch(e -> e.hasLog() && e.getLog().getStage().equals("buildkit")),
        "build output is streamed");
    assertFalse(events.toString().contains(TOKEN), "the token never reaches an event");

    assertFalse(engine.imageExists(image), "the caller's name is never made in the engine");
    assertFalse(engine.docker("images", "--format", "{{.Repository}}").output()
        .contains("slipway.local/"), "no job-private name is left");

    // From outside the worker: pull by the reported digest and run it.
    String byDigest = registry.address() + "/" + image.substring(0, image.indexOf(':')) + "@"
        + result.getImageDigest();
    images.add(byDigest);
    Path config = Files.createDirectories(dir.resolve("outsider"));
    DockerEngine.Result login = outsider(config, registry.password(), "login", "-u",
        registry.user(), "--password-stdin", registry.address());
    assertTrue(login.isSuccess(), login.output());
    DockerEngine.Result pull = outsider(config, null, "pull", byDigest);
    assertTrue(pull.isSuccess(), pull.output());
    DockerEngine.Result run = engine.runRm(byDigest);
    assertTrue(run.isSuccess(), run.output());
    assertEquals(greeting + "\nsuffix=e2e", run.output().strip());
    assertEquals(sha, engine.labels(byDigest).get("org.opencontainers.image.revision"));
    assertEquals(gitServer.url("app.git"),
        engine.labels(byDigest).get("org.opencontainers.image.source"));
    assertEquals(0, TestWorkers.workspaceCount(dir));
    assertTrue(Files.notExists(dir.resolve("workspaces")) || TestWorkers.workspaceCount(dir) == 0);
  }

  private DockerEngine.Result outsider(Path config, String stdin, String... args)
      throws Exception {
    List<String> command = new ArrayList<>(List.of(engine.cli().toString(), "--config",
        config.toString(), "-H", engine.host().orElseThrow()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    if (stdin != null) {
      p.getOutputStream().write(stdin.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(),
        java.nio.charset.StandardCharsets.UTF_8);
    p.waitFor(2, TimeUnit.MINUTES);
    return new DockerEngine.Result(p.exitValue(), out);
  }
}

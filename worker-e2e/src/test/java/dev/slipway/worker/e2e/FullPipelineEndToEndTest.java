package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.EcrStandIn;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.LocalRegistry;
import io.grpc.ManagedChannel;
import java.nio.charset.StandardCharsets;
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
 * Issue 4's "done": the default pipeline git -> buildkit -> ecr -> docker-push over gRPC, with a
 * real git server, the real Docker engine, the real AWS SDK against an ECR stand-in that checks
 * SigV4, and a real registry with basic auth; the result is verified from outside the worker.
 */
class FullPipelineEndToEndTest {
  private static final String TOKEN = "ghp_full" + UUID.randomUUID().toString().replace("-", "");
  private static final String ACCESS_KEY = "AKIAE2ETESTKEY000001";
  private static final String SECRET_KEY = "e2e/Secret+Key" + UUID.randomUUID();

  @TempDir Path dir;
  DockerEngine engine;
  LocalRegistry registry;
  GitHttpServer gitServer;
  EcrStandIn ecr;
  Worker worker;
  ManagedChannel channel;
  String sha;
  final List<String> images = new ArrayList<>();

  @BeforeEach
  void services() throws Exception {
    engine = DockerEngine.fromEnvironment();
    Optional<String> skip = engine.skipReason();
    assumeTrue(skip.isEmpty(), () -> "skipped: " + skip.orElse(""));
    registry = LocalRegistry.fromEnvironment();
    Optional<String> noRegistry = registry.skipReason();
    assumeTrue(noRegistry.isEmpty(), () -> "skipped: " + noRegistry.orElse(""));

    GitRepos repos = new GitRepos(dir.resolve("repos"));
    repos.repository("app.git")
        .file("Dockerfile", "FROM local/busybox:1\nCOPY greeting.txt /greeting.txt\n"
            + "CMD [\"cat\", \"/greeting.txt\"]\n")
        .file(".dockerignore", ".git\n")
        .file("greeting.txt", "pushed by slipway\n")
        .commit("first")
        .build();
    sha = repos.revParse("app.git", "HEAD");
    gitServer = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
    ecr = EcrStandIn.builder().region("eu-west-1").credentials(ACCESS_KEY, SECRET_KEY)
        .registryHost(registry.address()).tokenCredentials("AWS", registry.awsPassword())
        .start();
  }

  @AfterEach
  void stop() throws Exception {
    TestWorkers.close(worker, channel);
    for (AutoCloseable c : new AutoCloseable[] {gitServer, ecr}) {
      if (c != null) {
        c.close();
      }
    }
    if (engine != null && engine.isAvailable()) {
      engine.removeImages(images.toArray(String[]::new));
    }
  }

  private void startWorker(String extra) throws Exception {
    Path conf = TestWorkers.config(dir, "worker.pipeline = [git, buildkit, ecr, docker-push]\n"
        + "worker.region = eu-west-1\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.buildkit { docker-cli = \"" + engine.cli() + "\", docker-host = \""
        + engine.host().orElseThrow() + "\", network = none }\n"
        + "worker.stages.ecr { endpoint-override = \"" + ecr.endpoint() + "\", max-attempts = 1 }\n"
        + "worker.stages.docker-push { docker-host = \"" + engine.host().orElseThrow() + "\","
        + " retry.max-attempts = 1 }\n" + extra);
    // The AWS keys come the way operators give them: environment variables.
    Environment env = Environment.of(Map.of("AWS_ACCESS_KEY_ID", ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY", SECRET_KEY, "AWS_EC2_METADATA_DISABLED", "true"));
    worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, env, new Properties(),
        Path.of("..").toAbsolutePath().normalize()), PluginRegistry.discover(), null);
    worker.start();
    channel = TestWorkers.channel(worker);
  }

  private List<JobEvent> run(String image) {
    List<JobEvent> events = new ArrayList<>();
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES)
        .streamJob(TestWorkers.request().setRepoUrl(gitServer.url("app.git"))
            .setGithubToken(TOKEN).setImageName(image).build())
        .forEachRemaining(events::add);
    return events;
  }

  private static JobResponse result(List<JobEvent> events) {
    return events.get(events.size() - 1).getResult();
  }

  /** Runs the docker CLI with a throwaway config folder, so no login outlives the test. */
  private DockerEngine.Result dockerAsOutsider(String... args) throws Exception {
    Path config = dir.resolve("outsider-docker-config");
    Files.createDirectories(config);
    List<String> command = new ArrayList<>(List.of(engine.cli().toString(), "--config",
        config.toString(), "-H", engine.host().orElseThrow()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    if (args[0].equals("login")) {
      p.getOutputStream().write(registry.awsPassword().getBytes(StandardCharsets.UTF_8));
    }
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor(2, TimeUnit.MINUTES);
    return new DockerEngine.Result(p.exitValue(), out);
  }

  @Test
  void jobPushesAnImageThatTheRegistryServesAndASecondJobReusesTokenAndLayers()
      throws Exception {
    startWorker("");
    String repository = "e2e/app-" + UUID.randomUUID().toString().substring(0, 8);

    List<JobEvent> first = run(repository + ":1");
    JobResponse response = result(first);
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, response.getOutcome(), response.toString());
    assertEquals(sha, response.getCommitSha());
    assertEquals(registry.address() + "/" + repository + ":1", response.getImageUri());
    assertTrue(response.getImageDigest().matches("sha256:[0-9a-f]{64}"), response.toString());
    assertEquals(List.of("git", "buildkit", "ecr", "docker-push"),
        response.getStagesList().stream().map(s -> s.getStage()).toList());
    // The digest the worker reported is the one the registry serves.
    assertEquals(Optional.of(response.getImageDigest()),
        registry.manifestDigest(repository, "1"));
    String everything = first.toString();
    assertFalse(everything.contains(TOKEN) || everything.contains(registry.awsPassword())
        || everything.contains(SECRET_KEY), "no secret in any event");

    // From outside the worker: pull by the reported digest and run it.
    String byDigest = registry.address() + "/" + repository + "@" + response.getImageDigest();
    images.add(byDigest);
    assertTrue(dockerAsOutsider("login", "-u", "AWS", "--password-stdin", registry.address())
        .isSuccess());
    DockerEngine.Result pull = dockerAsOutsider("pull", byDigest);
    assertTrue(pull.isSuccess(), pull.output());
    DockerEngine.Result run = engine.runRm(byDigest);
    assertEquals("pushed by slipway", run.output().strip());

    // A second job right after: one ECR call in all, and no layer uploaded again.
    List<JobEvent> second = run(repository + ":2");
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, result(second).getOutcome(),
        result(second).toString());
    assertEquals(1, ecr.calls(), "the ECR token is cached between jobs");
    List<String> pushLines = second.stream()
        .filter(e -> e.hasLog() && e.getLog().getStage().equals("docker-push"))
        .map(e -> e.getLog().getLine()).toList();
    assertTrue(pushLines.stream().anyMatch(l -> l.contains("already exists")), pushLines.toString());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void ecrRefusingTheCallerFailsWithEcrAuthFailed() throws Exception {
    ecr.mode(EcrStandIn.Mode.ACCESS_DENIED);
    startWorker("");
    JobResponse response = result(run("e2e/denied:1"));
    assertEquals(JobOutcome.JOB_OUTCOME_FAILED, response.getOutcome());
    assertEquals("ecr", response.getFailedStage());
    assertEquals("ecr.auth-failed", response.getErrorCode(), response.getMessage());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void aTokenTheRegistryRejectsFailsWithPushDenied() throws Exception {
    ecr.credentials("AWS", "not-the-registry-password");
    startWorker("");
    JobResponse response = result(run("e2e/rejected:1"));
    assertEquals(JobOutcome.JOB_OUTCOME_FAILED, response.getOutcome());
    assertEquals("docker-push", response.getFailedStage());
    assertEquals("push.denied", response.getErrorCode(), response.getMessage());
    assertFalse(response.getMessage().contains("not-the-registry-password"));

    // The refused token is not handed out again: once ECR has a good one, the next job works.
    ecr.credentials("AWS", registry.awsPassword());
    JobResponse next = result(run("e2e/rejected:2"));
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, next.getOutcome(), next.toString());
    assertEquals(2, ecr.calls(), "the refused token was forgotten, not reused");
  }

  @Test
  void registryDownDuringThePushFailsAndLeavesTheWorkerFreeAndClean() throws Exception {
    // ECR hands out a registry where nothing listens.
    try (EcrStandIn deadRegistry = EcrStandIn.builder().region("eu-west-1")
        .credentials(ACCESS_KEY, SECRET_KEY).registryHost("127.0.0.1:1")
        .tokenCredentials("AWS", "whatever").start()) {
      ecr.close();
      ecr = deadRegistry;
      startWorker("");
      JobResponse response = result(run("e2e/down:1"));
      assertEquals(JobOutcome.JOB_OUTCOME_FAILED, response.getOutcome());
      assertEquals("docker-push", response.getFailedStage());
      assertEquals("push.failed", response.getErrorCode(), response.getMessage());
      assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
      assertEquals(0, TestWorkers.workspaceCount(dir));
      ecr = null;
    }
  }

}

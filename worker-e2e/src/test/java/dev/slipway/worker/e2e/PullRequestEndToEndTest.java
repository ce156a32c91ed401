package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.proto.v1.ErrorKind;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
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
 * Issue 11's "done": an orchestrator builds a pull request's merge ref at an exact commit
 * (although the ref has moved on since), from a base image that only the authenticated registry
 * has, pushes it under its tag and two extra tags, and learns from failures whether to retry. A
 * real git server, the real engine, the real AWS SDK against the ECR stand-in, a real registry.
 */
class PullRequestEndToEndTest {
  private static final String TOKEN = "ghp_pr" + UUID.randomUUID().toString().replace("-", "");
  private static final String ACCESS_KEY = "AKIAE2EPULLREQUEST01";
  private static final String SECRET_KEY = "pr/Secret+Key" + UUID.randomUUID();

  @TempDir Path dir;
  DockerEngine engine;
  LocalRegistry registry;
  GitHttpServer gitServer;
  EcrStandIn ecr;
  Worker worker;
  ManagedChannel channel;
  String unique = UUID.randomUUID().toString().substring(0, 8);
  String base;
  String webhookCommit;
  final List<String> images = new ArrayList<>();

  @BeforeEach
  void services() throws Exception {
    engine = DockerEngine.fromEnvironment();
    Optional<String> skip = engine.skipReason();
    assumeTrue(skip.isEmpty(), () -> "skipped: " + skip.orElse(""));
    registry = LocalRegistry.fromEnvironment();
    Optional<String> noRegistry = registry.skipReason();
    assumeTrue(noRegistry.isEmpty(), () -> "skipped: " + noRegistry.orElse(""));

    // The base image exists only in the authenticated registry, not in the engine.
    base = registry.address() + "/e2e-private-" + unique + "/base:1";
    docker("tag", "local/busybox:1", base);
    assertEquals(0,
        docker("login", "-u", "AWS", "--password-stdin", registry.address()).exitCode());
    assertEquals(0, docker("push", base).exitCode());
    docker("rmi", base);

    GitRepos repos = new GitRepos(dir.resolve("repos"));
    Path app = repos.repository("app.git")
        .file("Dockerfile", "FROM " + base + "\nCOPY greeting.txt /greeting.txt\n"
            + "CMD [\"cat\", \"/greeting.txt\"]\n")
        .file(".dockerignore", ".git\n")
        .file("greeting.txt", "main\n").commit("main")
        .branch("topic").file("greeting.txt", "pull request 42, as the webhook saw it\n")
        .commit("pr: first")
        // The pull request moves on after the webhook fired: its merge ref is a later commit.
        .file("greeting.txt", "pull request 42, pushed later\n").commit("pr: later")
        .build();
    webhookCommit = repos.revParse("app.git", "refs/heads/topic~1");
    // What GitHub serves for a pull request: refs under refs/pull/ only.
    GitRepos.git(app, "update-ref", "refs/pull/42/merge", "refs/heads/topic");
    GitRepos.git(app, "update-ref", "-d", "refs/heads/topic");
    gitServer = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
    ecr = EcrStandIn.builder().region("eu-west-1").credentials(ACCESS_KEY, SECRET_KEY)
        .registryHost(registry.address()).tokenCredentials("AWS", registry.awsPassword())
        .start();

    Path conf = TestWorkers.config(dir, "worker.pipeline = [git, ecr, buildkit, docker-push]\n"
        + "worker.region = eu-west-1\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.buildkit { docker-cli = \"" + engine.cli() + "\", docker-host = \""
        + engine.host().orElseThrow() + "\", network = none }\n"
        + "worker.stages.ecr { endpoint-override = \"" + ecr.endpoint() + "\", max-attempts = 1 }\n"
        + "worker.stages.docker-push { docker-host = \"" + engine.host().orElseThrow() + "\","
        + " retry.max-attempts = 1 }\n");
    Environment env = Environment.of(Map.of("AWS_ACCESS_KEY_ID", ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY", SECRET_KEY, "AWS_EC2_METADATA_DISABLED", "true"));
    worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, env, new Properties(),
        Path.of("..").toAbsolutePath().normalize()), PluginRegistry.discover(), null);
    worker.start();
    channel = TestWorkers.channel(worker);
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
      images.add(base);
      engine.removeImages(images.toArray(String[]::new));
    }
  }

  private JobRequest.Builder pullRequest(String repository) {
    return TestWorkers.request().setRepoUrl(gitServer.url("app.git")).setGithubToken(TOKEN)
        .setRef("refs/pull/42/merge").setCommitSha(webhookCommit)
        .setImageName(repository + ":" + webhookCommit.substring(0, 12))
        .addExtraTags("pr-42").addExtraTags("latest");
  }

  private JobResponse runJob(JobRequest request) {
    return JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES)
        .runJob(request);
  }

  /** The docker CLI as someone outside the worker, with a throwaway config folder. */
  private DockerEngine.Result docker(String... args) throws Exception {
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
  void theMergeRefAtTheWebhooksCommitIsBuiltFromAPrivateBaseAndPushedUnderThreeTags()
      throws Exception {
    String repository = "e2e-pr-" + unique + "/app";
    List<Path> configsBefore = privateDockerConfigs();

    JobResponse response = runJob(pullRequest(repository).build());

    assertTrue(response.getSuccess(), response.toString());
    assertEquals(webhookCommit, response.getCommitSha(), "the exact commit, not the ref's tip");
    String main = registry.address() + "/" + repository + ":" + webhookCommit.substring(0, 12);
    assertEquals(main, response.getImageUri());
    assertEquals(List.of(registry.address() + "/" + repository + ":pr-42",
        registry.address() + "/" + repository + ":latest"), response.getExtraImageUrisList());
    for (String tag : List.of(webhookCommit.substring(0, 12), "pr-42", "latest")) {
      assertEquals(Optional.of(response.getImageDigest()),
          registry.manifestDigest(repository, tag), "tag " + tag);
    }
    // What the registry serves under an extra tag is the webhook's commit on the private base.
    String pulled = registry.address() + "/" + repository + ":pr-42";
    images.add(pulled);
    assertEquals(0, docker("pull", pulled).exitCode());
    DockerEngine.Result run = docker("run", "--rm", "--network", "none", pulled);
    assertEquals("pull request 42, as the webhook saw it", run.output().strip());
    // The registry login the build used was the job's alone: nothing of it is left on disk.
    assertEquals(configsBefore, privateDockerConfigs());
    try (var files = Files.walk(dir.resolve("workspaces"))) {
      // The worker's own lock on its root stays while it runs.
      List<Path> left = files.filter(p -> !p.equals(dir.resolve("workspaces"))
          && !p.getFileName().toString().equals(".slipway.lock")).toList();
      assertEquals(List.of(), left, "the workspace root holds nothing of the job after it");
    }
  }

  /** The per-build Docker config folders the buildkit stage makes in the temporary folder. */
  private static List<Path> privateDockerConfigs() throws Exception {
    try (var entries = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
      return entries.filter(p -> p.getFileName().toString().startsWith("slipway-dockercfg-"))
          .sorted().toList();
    }
  }

  @Test
  void failuresSayWhetherTheSameRequestCouldSucceedLater() throws Exception {
    String repository = "e2e-pr-" + unique + "/fails";

    // A commit the repository does not have: the request is wrong, retrying cannot help.
    JobResponse missing = runJob(pullRequest(repository)
        .setCommitSha("0123456789abcdef0123456789abcdef01234567").build());
    assertFalse(missing.getSuccess());
    assertEquals("git.commit-not-found", missing.getErrorCode());
    assertEquals(ErrorKind.ERROR_KIND_INVALID_REQUEST, missing.getErrorKind());
    assertFalse(missing.getRetryable());

    // ECR gone (an outage): someone else's failure, and the same request may succeed later.
    ecr.close();
    ecr = null;
    JobResponse outage = runJob(pullRequest(repository).build());
    assertFalse(outage.getSuccess());
    assertEquals("ecr.unreachable", outage.getErrorCode());
    assertEquals(ErrorKind.ERROR_KIND_EXTERNAL, outage.getErrorKind());
    assertTrue(outage.getRetryable(), outage.toString());
    assertEquals(Optional.empty(), registry.manifestDigest(repository, "pr-42"));
  }
}

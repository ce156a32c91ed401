package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.DockerEngine;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crash recovery of the buildkit stage, against the real engine: a build records its private
 * image, its temporary directories and its processes' marker before it makes them, and a worker
 * started after a crash removes exactly those (and leaves alone what is not the stage's).
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class BuildLeftoversTest {
  private static final DockerEngine DOCKER = DockerEngine.fromEnvironment();
  private static final String SECRET = "leftover-secret-value-4c3b2a";
  private static final String REGISTRY_PASSWORD = "leftover-registry-password-93ad";

  @TempDir Path tmp;
  private final List<String> images = new ArrayList<>();
  private final List<Process> processes = new CopyOnWriteArrayList<>();
  private final List<String> log = new CopyOnWriteArrayList<>();
  private final JobLog jobLog = new JobLog() {
    @Override
    public void line(String line) {
      log.add(line);
    }

    @Override
    public OutputStream lineStream() {
      return OutputStream.nullOutputStream();
    }
  };

  @BeforeEach
  void engine() {
    Optional<String> missing = DOCKER.skipReason();
    assumeTrue(missing.isEmpty(), () -> "needs a Docker engine: " + missing.orElseThrow());
  }

  @AfterEach
  void clean() {
    processes.forEach(Process::destroyForcibly);
    DOCKER.removeImages(images.toArray(String[]::new));
  }

  private BuildkitStage stage() throws Exception {
    return Fixtures.stage(Map.of("docker-cli", DOCKER.cli().toString(), "network", "none"),
        Fixtures.worker(DOCKER.environment()), Clock.systemUTC());
  }

  /** A job context that checks, at each record, that the thing it names does not exist yet. */
  private final class Checking implements JobContext {
    final JobContext job;
    final List<String> records = new CopyOnWriteArrayList<>();
    final List<String> existedAlready = new CopyOnWriteArrayList<>();
    final List<ProcessHandle> started = new CopyOnWriteArrayList<>();

    Checking(JobContext job) {
      this.job = job;
    }

    @Override
    public void recordLeftover(String what) {
      records.add(what);
      if (what.startsWith("dir ") && Files.exists(Path.of(what.substring(4)))
          || what.startsWith("image ") && DOCKER.imageExists(what.substring(6))
          || what.startsWith("build ") && ProcessHandle.allProcesses().anyMatch(p -> p.info()
              .arguments().map(a -> String.join(" ", a).contains(what.substring(6))).orElse(false))) {
        existedAlready.add(what);
      }
    }

    @Override
    public void processStarted(ProcessHandle process) {
      started.add(process);
    }

    @Override
    public String jobId() {
      return job.jobId();
    }

    @Override
    public JobRequestView request() {
      return job.request();
    }

    @Override
    public Path workspace() {
      return job.workspace();
    }

    @Override
    public <T> Optional<T> get(StageKey<T> key) {
      return job.get(key);
    }

    @Override
    public <T> void publish(StageKey<T> key, T value) {
      job.publish(key, value);
    }

    @Override
    public JobLog log() {
      return job.log();
    }

    @Override
    public void addSecret(String secret) {
      job.addSecret(secret);
    }

    @Override
    public boolean isCancelled() {
      return job.isCancelled();
    }

    @Override
    public void onCancel(Runnable action) {
      job.onCancel(action);
    }
  }

  @Test
  void aBuildRecordsWhatItLeavesBeforeMakingItAndNoSecret() throws Exception {
    Path workspace = Files.createDirectories(tmp.resolve("workspace"));
    Path source = Files.createDirectories(workspace.resolve("src"));
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\n"
        + "RUN --mount=type=secret,id=npmrc test -s /run/secrets/npmrc\n");
    Checking job = new Checking(Fixtures.job(Fixtures.request(Fixtures.uniqueImage(),
        "Dockerfile", ".", Map.of(), Map.of("npmrc", SECRET)), workspace, source));
    // An auth stage ran before the build: its credentials get a private Docker config of their own.
    job.publish(StageKeys.REGISTRY_CREDENTIALS,
        new RegistryCredentials("127.0.0.1:5000", "slipway", Secret.of(REGISTRY_PASSWORD)));
    BuildkitStage stage = stage();
    try {
      stage.execute(job);
    } finally {
      job.get(BuildkitStage.BUILT_NAME).ifPresent(images::add);
      stage.cleanup(job);
    }
    List<String> records = job.records;
    assertEquals(List.of(), job.existedAlready, "each thing is recorded before it is made");
    String image = job.get(StageKeys.LOCAL_IMAGE).orElseThrow();
    assertEquals("image " + image, records.get(0));
    assertTrue(records.get(1).matches("dir .*/slipway-buildkit-[0-9a-f]{16}"), records.toString());
    assertTrue(records.get(2).matches("dir .*/slipway-secrets-[0-9a-f]{16}"), records.toString());
    assertTrue(records.get(3).matches("dir .*/slipway-dockercfg-[0-9a-f]{16}"), records.toString());
    assertTrue(records.get(4).matches("build slipway-" + job.jobId() + "-[0-9a-f]{8}"),
        records.toString());
    assertEquals(5, records.size(), records.toString());
    assertFalse(String.join("\n", records).contains(SECRET), "no secret value in a record");
    assertFalse(String.join("\n", records).contains(REGISTRY_PASSWORD), "no password in a record");
    for (String dir : List.of(records.get(1), records.get(2), records.get(3))) {
      assertFalse(Files.exists(Path.of(dir.substring(4))), "gone after the build: " + dir);
    }
    assertFalse(String.join("\n", records).contains(Fixtures.TOKEN), "no token in a record");
    assertEquals(1, job.started.size(), "build.sh is reported to the runtime");
    // A normal end removed everything, so a later recovery finds nothing to do.
    stage.removeLeftovers(records, jobLog);
    assertTrue(log.stream().noneMatch(l -> l.startsWith("removed") || l.startsWith("killed")),
        log.toString());
  }

  @Test
  void recoveryRemovesTheImageTheDirectoriesAndTheProcessesOfTheRecordsAndNothingElse()
      throws Exception {
    String unique = Fixtures.uniqueImage().replaceAll("[^0-9a-f]", "").substring(0, 8);
    String image = "slipway.local/job-" + unique + "-0123abcd:build";
    String notPrivate = "slipway-test/leftover-" + unique + ":1";
    for (String name : List.of(image, notPrivate)) {
      assertTrue(DOCKER.docker("tag", "local/busybox:1", name).isSuccess());
      images.add(name);
    }
    Path buildDir = Files.createDirectories(tmp.resolve("slipway-buildkit-0123456789abcdef"));
    Files.createDirectories(buildDir.resolve("slipway-build-x/docker-config"));
    Path secretsDir = Files.createDirectories(tmp.resolve("slipway-secrets-fedcba9876543210"));
    Files.writeString(secretsDir.resolve("secret-1"), SECRET);
    Path dockerConfigDir = Files.createDirectories(tmp.resolve("slipway-dockercfg-00aa11bb22cc33dd"));
    Files.writeString(dockerConfigDir.resolve("config.json"), "{\"auths\":{}}");
    Path linked = Files.createDirectories(tmp.resolve("someone-elses"));
    Files.writeString(linked.resolve("keep"), "keep");
    Path link = Files.createSymbolicLink(tmp.resolve("slipway-secrets-00112233445566ff"), linked);
    Path other = Files.createDirectories(tmp.resolve("not-ours"));
    String uniqueName = "slipway-job-" + unique + "-89abcdef";
    // A build's shell and its child, with the unique name in the shell's arguments.
    Process build = new ProcessBuilder("bash", "-c", "sleep 300; true", uniqueName).start();
    processes.add(build);
    Process bystander = new ProcessBuilder("sleep", "301").start();
    processes.add(bystander);
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (build.toHandle().children().findAny().isEmpty()) {
      assertTrue(System.nanoTime() < end);
      Thread.sleep(10);
    }
    List<ProcessHandle> tree = new ArrayList<>(build.toHandle().descendants().toList());

    stage().removeLeftovers(List.of(
        "build " + uniqueName,
        "image " + image,
        "image " + notPrivate,
        "dir " + buildDir,
        "dir " + secretsDir,
        "dir " + dockerConfigDir,
        "dir " + link,
        "dir " + other,
        "dir relative/slipway-buildkit-0123456789abcdef",
        "something new"), jobLog);

    assertTrue(build.waitFor(5, TimeUnit.SECONDS), "the build's shell was killed: " + log);
    for (ProcessHandle p : tree) {
      end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (ProcessTree.isRunning(p)) {
        assertTrue(System.nanoTime() < end, "the build's child was killed");
        Thread.sleep(10);
      }
    }
    assertTrue(bystander.isAlive(), "a process without the marker is left alone");
    assertFalse(DOCKER.imageExists(image));
    assertTrue(DOCKER.imageExists(notPrivate), "only slipway.local/ names are removed");
    assertFalse(Files.exists(buildDir));
    assertFalse(Files.exists(secretsDir));
    assertFalse(Files.exists(dockerConfigDir), "a crashed build's registry credentials are removed");
    assertTrue(Files.isSymbolicLink(link) && Files.exists(linked.resolve("keep")),
        "a link is not followed");
    assertTrue(Files.isDirectory(other));
    String text = String.join("\n", log);
    assertTrue(text.contains("killed build process " + build.pid()), text);
    assertTrue(text.contains("removed the build's private image " + image), text);
    assertTrue(text.contains("removed the build's temporary directory " + buildDir), text);
    assertTrue(text.contains("removed the build's temporary directory " + secretsDir), text);
    assertTrue(text.contains("removed the build's temporary directory " + dockerConfigDir), text);
    assertTrue(text.contains("left image " + notPrivate + " alone"), text);
    assertTrue(text.contains("left " + link + " alone"), text);
    assertTrue(text.contains("left " + other + " alone"), text);
    assertTrue(text.contains("ignored a record this version does not know: something new"), text);
  }

  @Test
  void anUnreachableEngineFailsTheRecoverySoTheRecordsAreKept() throws Exception {
    BuildkitStage stage = Fixtures.stage(Map.of("docker-cli", DOCKER.cli().toString(),
            "docker-host", "unix://" + tmp.resolve("no-engine.sock")),
        Fixtures.worker(DOCKER.environment()), Clock.systemUTC());
    Path dir = Files.createDirectories(tmp.resolve("slipway-buildkit-aaaaaaaaaaaaaaaa"));
    IllegalStateException e = assertThrows(IllegalStateException.class, () ->
        stage.removeLeftovers(List.of("image slipway.local/job-1-0123abcd:build", "dir " + dir),
            jobLog));
    assertTrue(e.getMessage().contains("cannot be reached"), e.getMessage());
    assertFalse(Files.exists(dir), "what could be removed was: " + log);
    assertEquals(List.of(), Arrays.asList(log.stream().filter(l -> l.contains(SECRET))
        .toArray(String[]::new)));
  }
}

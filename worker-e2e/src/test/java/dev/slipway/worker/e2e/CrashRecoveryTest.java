package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.LocalRegistry;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Recovery after a crash, with real components: a worker in its own OS process runs [git,
 * buildkit, docker-push] against a loopback git server and the real Docker engine; while the
 * build sleeps in its RUN step the worker is killed with SIGKILL, which leaves build.sh, the
 * docker CLI, the workspace, the build's temporary directories (one holding a build secret) and
 * the job's state file behind. A new worker on the same workspace root removes all of it before
 * it serves, and says so in its log.
 */
class CrashRecoveryTest {
  private static final Pattern LISTENING = Pattern.compile("listening on [0-9.]+:(\\d+)");
  private static final String TOKEN = "ghp_crashToken" + UUID.randomUUID().toString().replace("-", "");
  private static final String SECRET = "crash-secret-" + UUID.randomUUID();

  @TempDir Path dir;
  DockerEngine engine;
  LocalRegistry registry;
  GitHttpServer gitServer;
  final List<Process> workers = new CopyOnWriteArrayList<>();
  final List<ManagedChannel> channels = new CopyOnWriteArrayList<>();
  /** Build processes seen while the first worker ran: killed at the end if anything is left. */
  final List<ProcessHandle> buildProcesses = new CopyOnWriteArrayList<>();
  String marker;

  @BeforeEach
  void services() {
    engine = DockerEngine.fromEnvironment();
    Optional<String> skip = engine.skipReason();
    assumeTrue(skip.isEmpty(), () -> "skipped: " + skip.orElse(""));
    registry = LocalRegistry.fromEnvironment();
    Optional<String> noRegistry = registry.skipReason();
    assumeTrue(noRegistry.isEmpty(), () -> "skipped: " + noRegistry.orElse(""));
  }

  @AfterEach
  void killEverything() throws Exception {
    for (ManagedChannel c : channels) {
      c.shutdownNow();
    }
    for (Process w : workers) {
      w.destroyForcibly();
      w.waitFor(10, TimeUnit.SECONDS);
    }
    // A failed test may leave the build running: its CLI's death cancels it in the engine.
    for (ProcessHandle p : buildProcesses) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
    if (gitServer != null) {
      gitServer.close();
    }
    if (engine != null && engine.isAvailable()) {
      for (String image : privateImages()) {
        engine.removeImages(image);
      }
    }
  }

  @Test
  void aWorkerStartedAfterASigkillRemovesWhatTheKilledWorkersJobLeft() throws Exception {
    marker = "crash-marker-" + UUID.randomUUID();
    GitRepos repos = new GitRepos(dir.resolve("repos"));
    repos.repository("app.git")
        .file("Dockerfile", "FROM local/busybox:1\n"
            + "RUN --mount=type=secret,id=npmrc sleep 300 && echo " + marker + "\n")
        .commit("first")
        .build();
    gitServer = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
    Path conf = TestWorkers.config(dir, "worker.pipeline = [git, buildkit, docker-push]\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.buildkit.script = \""
        + Path.of("..", "scripts", "build.sh").toAbsolutePath().normalize() + "\"\n"
        + "worker.stages.buildkit.docker-cli = \"" + engine.cli() + "\"\n"
        + "worker.stages.buildkit.docker-host = \"" + engine.host().orElseThrow() + "\"\n"
        + "worker.stages.buildkit.network = none\n"
        + "worker.stages.docker-push { docker-host = \"" + engine.host().orElseThrow() + "\","
        + " registry = \"" + registry.address() + "\", retry.max-attempts = 1,"
        + " auth { username = \"" + registry.user() + "\", password = \"" + registry.password()
        + "\" } }\n");
    Path root = dir.resolve("workspaces");
    Path tmp = Files.createDirectories(dir.resolve("tmp"));

    // 1. The first worker runs the job until the build sleeps in its RUN step.
    Process first = launch(conf, tmp, "first");
    int port = awaitPort(first, "first");
    String jobId = "crash-" + UUID.randomUUID().toString().substring(0, 8);
    ManagedChannel channel = channel(port);
    List<JobEvent> events = new CopyOnWriteArrayList<>();
    JobServiceGrpc.newStub(channel).streamJob(TestWorkers.request()
        .setJobId(jobId)
        .setRepoUrl(gitServer.url("app.git"))
        .setGithubToken(TOKEN)
        .setImageName("crash/app:1")
        .putBuildSecrets("npmrc", SECRET)
        .build(), new StreamObserver<>() {
          @Override
          public void onNext(JobEvent value) {
            events.add(value);
          }

          @Override
          public void onError(Throwable t) {}

          @Override
          public void onCompleted() {}
        });
    List<ProcessHandle> sleepers = awaitSleeper(first, events);
    // The build's output pipe goes with the worker: a line written after the kill would end the
    // CLI by SIGPIPE. Kill only once the RUN step's line is through and the output is quiet.
    awaitQuiet(events);

    Path stateFile = stateFile(root);
    String state = Files.readString(stateFile, StandardCharsets.UTF_8);
    assertFalse(state.contains(TOKEN), "no token in the state file:\n" + state);
    assertFalse(state.contains(SECRET), "no build secret in the state file:\n" + state);
    assertFalse(state.contains(registry.password()), "no registry password:\n" + state);
    List<Long> pids = recorded(state, "process ").stream()
        .map(r -> Long.parseLong(r.split(" ")[0])).toList();
    List<String> starts = recorded(state, "process ").stream().map(r -> r.split(" ")[1]).toList();
    String image = recorded(state, "leftover buildkit image ").get(0);
    List<Path> dirs = recorded(state, "leftover buildkit dir ").stream().map(Path::of).toList();
    Path secretsDir = dirs.stream().filter(d -> d.getFileName().toString()
        .startsWith("slipway-secrets-")).findFirst().orElseThrow(() -> new AssertionError(state));
    Path workspace = root.resolve(stateFile.getFileName().toString()
        .replaceFirst("^\\.", "").replaceFirst("\\.state$", ""));
    assertEquals(1, pids.size(), state);
    assertTrue(image.startsWith("slipway.local/" + jobId + "-"), state);

    ProcessHandle buildSh = ProcessHandle.of(pids.get(0)).orElseThrow();
    List<ProcessHandle> tree = new ArrayList<>(buildSh.descendants().toList());
    tree.add(buildSh);
    buildProcesses.addAll(tree);
    assertTrue(tree.stream().anyMatch(p -> cmdline(p).contains(" build --progress=plain")),
        () -> "the docker CLI runs under build.sh: " + tree.stream().map(this::cmdline).toList());

    // 2. SIGKILL: nothing of the worker's cleanup runs.
    first.destroyForcibly();
    assertTrue(first.waitFor(10, TimeUnit.SECONDS));
    Thread.sleep(500);
    assertTrue(tree.stream().allMatch(CrashRecoveryTest::running),
        () -> "build.sh and the docker CLI outlive the worker; running: " + tree.stream()
            .filter(CrashRecoveryTest::running).map(this::cmdline).toList() + "; events: " + events);
    assertTrue(sleepers.stream().allMatch(CrashRecoveryTest::running), "the RUN step goes on");
    assertTrue(Files.isDirectory(workspace), "the workspace is left");
    assertTrue(Files.isRegularFile(secretsDir.resolve("secret-1")), "the secret file is left");
    assertEquals(SECRET, Files.readString(secretsDir.resolve("secret-1")));
    dirs.forEach(d -> assertTrue(Files.isDirectory(d), d + " is left"));
    assertTrue(Files.exists(stateFile));

    // 3. A new worker on the same root removes it all before it serves.
    Process second = launch(conf, tmp, "second");
    int secondPort = awaitPort(second, "second");
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, health(secondPort));

    for (int i = 0; i < pids.size(); i++) {
      assertFalse(sameProcessRuns(pids.get(i), starts.get(i)), "recorded process " + pids.get(i)
          + " was killed");
    }
    assertTrue(tree.stream().noneMatch(CrashRecoveryTest::running),
        () -> "nothing of build.sh's tree runs: " + tree.stream().filter(CrashRecoveryTest::running)
            .map(this::cmdline).toList());
    dirs.forEach(d -> assertFalse(Files.exists(d), d + " was removed"));
    assertFalse(Files.exists(workspace), "the workspace was removed");
    assertFalse(Files.exists(stateFile), "the state file was removed");
    assertEquals(List.of(), privateImages().stream().filter(n -> n.startsWith("slipway.local/"
        + jobId)).toList(), "no private image of the job");
    // The engine noticed its client's death and stopped the RUN step.
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (sleepers.stream().anyMatch(CrashRecoveryTest::running)) {
      assertTrue(System.nanoTime() < end, "the RUN step still runs 20 s after the recovery");
      Thread.sleep(50);
    }
    Thread.sleep(1000);
    assertEquals(List.of(), privateImages().stream().filter(n -> n.startsWith("slipway.local/"
        + jobId)).toList(), "no private image appears later");

    String log = log("second");
    assertTrue(log.contains("killed process " + pids.get(0) + " ("), log);
    assertTrue(log.contains("removed the build's temporary directory " + secretsDir), log);
    dirs.forEach(d -> assertTrue(log.contains("removed the build's temporary directory " + d), log));
    assertTrue(log.contains(image), "the log names the private image: " + log);
    assertTrue(log.contains("removed workspace " + workspace), log);
    assertTrue(log.contains("job=" + jobId), "recovery lines carry the job id: " + log);
    assertFalse(log.contains(SECRET) || log.contains(TOKEN), "no secret in the log");
    int recovered = log.indexOf("removed workspace " + workspace);
    int listening = log.indexOf("listening on");
    assertTrue(recovered >= 0 && recovered < listening, "recovery comes before serving");
  }

  // ---------------------------------------------------------------------------------------------

  private Process launch(Path conf, Path tmp, String name) throws IOException {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Djava.io.tmpdir=" + tmp,
        "--module-path", System.getProperty("jdk.module.path"),
        "--add-modules", "ALL-MODULE-PATH",
        "-cp", System.getProperty("java.class.path"),
        "-m", "dev.slipway.worker.runtime/dev.slipway.worker.runtime.Main",
        "--config", conf.toString()));
    Process p = new ProcessBuilder(command).directory(dir.toFile())
        .redirectError(dir.resolve(name + ".stderr").toFile())
        .redirectOutput(dir.resolve(name + ".stdout").toFile())
        .start();
    workers.add(p);
    return p;
  }

  private String log(String name) throws IOException {
    return Files.readString(dir.resolve(name + ".stderr"), StandardCharsets.UTF_8);
  }

  private int awaitPort(Process worker, String name) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      Matcher m = LISTENING.matcher(log(name));
      if (m.find()) {
        return Integer.parseInt(m.group(1));
      }
      assertTrue(worker.isAlive(), () -> "worker exited early: " + quietLog(name));
      Thread.sleep(50);
    }
    throw new AssertionError("worker did not start listening: " + log(name));
  }

  private String quietLog(String name) {
    try {
      return log(name);
    } catch (IOException e) {
      return e.toString();
    }
  }

  private ManagedChannel channel(int port) {
    ManagedChannel c = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    channels.add(c);
    return c;
  }

  private HealthCheckResponse.ServingStatus health(int port) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (true) {
      ManagedChannel c = channel(port); // a fresh channel each time: no client backoff
      try {
        return HealthGrpc.newBlockingStub(c).withDeadlineAfter(2, TimeUnit.SECONDS)
            .check(HealthCheckRequest.newBuilder().setService("slipway.worker.v1.JobService")
                .build()).getStatus();
      } catch (RuntimeException e) {
        if (System.nanoTime() > end) {
          throw e;
        }
        Thread.sleep(100);
      } finally {
        c.shutdownNow();
      }
    }
  }

  /** Waits until the RUN step's shell (with the marker in its arguments) runs in the engine. */
  private List<ProcessHandle> awaitSleeper(Process worker, List<JobEvent> events)
      throws Exception {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (true) {
      List<ProcessHandle> found = ProcessHandle.allProcesses()
          .filter(p -> cmdline(p).contains(marker) && cmdline(p).contains("sleep 300")).toList();
      if (!found.isEmpty()) {
        return found;
      }
      assertTrue(worker.isAlive(), () -> "worker exited: " + quietLog("first"));
      assertTrue(System.nanoTime() < end, () -> "the RUN step never started; events: " + events
          + "\nlog: " + quietLog("first"));
      Thread.sleep(50);
    }
  }

  /** Waits until the RUN step's line has arrived and no event came for a second. */
  private void awaitQuiet(List<JobEvent> events) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (events.stream().noneMatch(e -> e.hasLog() && e.getLog().getLine().contains("RUN")
        && e.getLog().getLine().contains(marker))) {
      assertTrue(System.nanoTime() < end, () -> "no RUN line in the events: " + events);
      Thread.sleep(50);
    }
    int seen;
    do {
      seen = events.size();
      Thread.sleep(1000);
    } while (events.size() != seen && System.nanoTime() < end);
  }

  private static Path stateFile(Path root) throws IOException {
    try (Stream<Path> s = Files.list(root)) {
      List<Path> files = s.filter(p -> p.getFileName().toString().startsWith(".job-crash-")
          && p.getFileName().toString().endsWith(".state")).toList();
      assertEquals(1, files.size(), files.toString());
      return files.get(0);
    }
  }

  private static List<String> recorded(String state, String prefix) {
    return Arrays.stream(state.split("\n")).filter(l -> l.startsWith(prefix))
        .map(l -> l.substring(prefix.length())).toList();
  }

  /** The local names under slipway.local/ that the engine has. */
  private List<String> privateImages() {
    DockerEngine.Result r = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}");
    return Arrays.stream(r.output().split("\n")).map(String::strip)
        .filter(n -> n.startsWith("slipway.local/")).toList();
  }

  private String cmdline(ProcessHandle p) {
    try {
      byte[] raw = Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline"));
      return new String(raw, StandardCharsets.UTF_8).replace('\0', ' ');
    } catch (IOException e) {
      return "";
    }
  }

  /** Alive and not a zombie (the reaper of an orphan may be slow, or absent in a container). */
  private static boolean running(ProcessHandle p) {
    if (!p.isAlive()) {
      return false;
    }
    Optional<String[]> stat = stat(p.pid());
    return stat.isPresent() && !stat.get()[0].equals("Z") && !stat.get()[0].equals("X");
  }

  /** True when pid runs and is the very process recorded (same start on the kernel's clock). */
  private static boolean sameProcessRuns(long pid, String recordedStart) {
    Optional<ProcessHandle> p = ProcessHandle.of(pid);
    Optional<String[]> stat = stat(pid);
    if (p.isEmpty() || stat.isEmpty() || !running(p.get())) {
      return false;
    }
    return recordedStart.endsWith(":" + stat.get()[19]);
  }

  private static Optional<String[]> stat(long pid) {
    try {
      String text = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      return Optional.of(text.substring(text.lastIndexOf(')') + 1).strip().split(" +"));
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }
}

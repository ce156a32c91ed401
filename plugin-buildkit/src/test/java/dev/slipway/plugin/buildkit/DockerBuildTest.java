package dev.slipway.plugin.buildkit;

import static dev.slipway.plugin.buildkit.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.DockerEngine;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real builds against the Docker engine of {@code scripts/test-services.sh up}, through the real
 * build.sh and {@code /usr/bin/docker}; skipped with the reason when no engine answers, failed
 * instead when {@code SLIPWAY_REQUIRE_DOCKER=1}.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class DockerBuildTest {
  private static final DockerEngine DOCKER = DockerEngine.fromEnvironment();
  private static final Duration CANCEL_LIMIT = Duration.ofSeconds(2);

  @TempDir Path tmp;
  private Path workspace;
  private Path source;
  private final List<String> images = new ArrayList<>();

  @BeforeEach
  void setUp() throws IOException {
    // Per test rather than @BeforeAll, so that each test is reported skipped with the reason.
    Optional<String> missing = DOCKER.skipReason();
    assumeTrue(missing.isEmpty(), () -> "needs a Docker engine: " + missing.orElseThrow());
    workspace = Files.createDirectories(tmp.resolve("workspace"));
    source = Files.createDirectories(workspace.resolve("src"));
  }

  @AfterEach
  void removeImages() {
    DOCKER.removeImages(images.toArray(String[]::new));
  }

  private String image() {
    String image = Fixtures.uniqueImage();
    images.add(image);
    return image;
  }

  private Fixtures.Worker worker() {
    return Fixtures.worker(DOCKER.environment());
  }

  private BuildkitStage stage(Map<String, Object> overrides) throws Exception {
    Map<String, Object> config = new HashMap<>(overrides);
    config.putIfAbsent("docker-cli", DOCKER.cli().toString());
    // The test engine runs with --bridge=none: RUN on its default network fails ("network bridge
    // not found"), so every build here says which network it wants.
    config.putIfAbsent("network", "none");
    return Fixtures.stage(config, worker(), Clock.systemUTC());
  }

  /** The private name the job's build was published under, removed after the test. */
  private String built(StreamingJobContext job) {
    String built = job.get(StageKeys.LOCAL_IMAGE).orElseThrow();
    images.add(built);
    assertTrue(Fixtures.PRIVATE_NAME.matcher(built).matches(), built);
    return built;
  }

  private StreamingJobContext job(String image, Map<String, String> buildArgs) {
    return Fixtures.job(Fixtures.request(image, "Dockerfile", ".", buildArgs), workspace, source);
  }

  @Test
  void buildsAnImageThatRunsAndCarriesItsLabels() throws Exception {
    // A fresh line each run, so that COPY and RUN really run rather than come from the cache.
    String hello = "hello from the repository " + System.nanoTime();
    Fixtures.write(source, "hello.txt", hello + "\n");
    Fixtures.write(source, ".dockerignore", ".git\n");
    Fixtures.write(
        source,
        "Dockerfile",
        "FROM local/busybox:1\n"
            + "ARG GREETING\n"
            + "COPY hello.txt /app/hello.txt\n"
            + "RUN echo \"greeting=${GREETING}\" > /app/run.txt && echo run-step-done\n"
            + "CMD [\"cat\", \"/app/hello.txt\", \"/app/run.txt\"]\n");
    String image = image();
    var job = job(image, Map.of("GREETING", "hi there"));
    BuildkitStage stage = stage(map("labels", map("\"org.example.team\"", "builds")));

    Instant before = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    long started = System.nanoTime();
    stage.execute(job);
    long buildMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    Instant after = Instant.now();
    System.out.println("measured: docker backend build (COPY + RUN, uncached): " + buildMillis + " ms");

    String built = built(job);
    assertFalse(DOCKER.imageExists(image), "the caller's name is never made in the shared engine");
    DockerEngine.Result run = DOCKER.runRm(built);
    assertEquals(0, run.exitCode(), run.output());
    assertEquals(hello + "\ngreeting=hi there\n", run.output());

    Map<String, String> labels = DOCKER.labels(built);
    assertEquals("https://git.example.com/team/app.git", labels.get("org.opencontainers.image.source"));
    assertEquals(Fixtures.COMMIT, labels.get("org.opencontainers.image.revision"));
    assertEquals("builds", labels.get("org.example.team"));
    Instant created = Instant.parse(labels.get("org.opencontainers.image.created"));
    assertTrue(!created.isBefore(before) && !created.isAfter(after), created + " not within the build");
    assertTrue(labels.get("org.opencontainers.image.created").endsWith("Z"), "RFC 3339 in UTC");

    List<String> lines = job.lines();
    assertTrue(lines.stream().anyMatch(l -> l.contains("run-step-done")), "RUN output is logged");
    assertTrue(lines.stream().anyMatch(l -> l.startsWith("#")), "BuildKit's plain progress is logged");
    for (String line : lines) {
      assertFalse(line.contains(Fixtures.TOKEN), "token in the log: " + line);
    }
  }

  @Test
  void theSameCommitBuildsTheSameImageWithTheCommitsTimeAsItsCreation() throws Exception {
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\nCOPY hello.txt /hello.txt\n");
    Fixtures.write(source, "hello.txt", "same commit " + System.nanoTime() + "\n");
    Instant commitTime = Instant.parse("2026-11-30T12:34:56Z");
    BuildkitStage stage = stage(map());
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      var job = job(image(), Map.of());
      job.publish(StageKeys.COMMIT_TIME, commitTime);
      stage.execute(job);
      String built = built(job);
      assertEquals("2026-11-30T12:34:56Z", DOCKER.labels(built).get("org.opencontainers.image.created"));
      ids.add(imageId(built));
      stage.cleanup(job);
    }
    // Identical image ids: a repeat job's push finds everything in the registry already.
    assertEquals(ids.get(0), ids.get(1));
  }

  @Test
  void cleanupRemovesThePrivateNameWhateverTheOutcomeAndLeavesTheCallersNameAlone() throws Exception {
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\nRUN echo " + System.nanoTime()
        + " > /n.txt\n");
    // Someone else's image already has the name the jobs ask for.
    String taken = image();
    assertTrue(DOCKER.docker("tag", "local/busybox:1", taken).isSuccess());
    String takenId = imageId(taken);
    BuildkitStage stage = stage(map());

    var notPushed = job(taken, Map.of());
    stage.execute(notPushed);
    String first = built(notPushed);
    assertTrue(DOCKER.imageExists(first));
    assertEquals(takenId, imageId(taken), "the build does not touch an image under image_name");
    stage.cleanup(notPushed);
    assertFalse(DOCKER.imageExists(first), "a private name is removed even when nothing pushed it");

    var pushed = job(taken, Map.of());
    stage.execute(pushed);
    String second = built(pushed);
    pushed.publish(StageKeys.IMAGE_DIGEST, "sha256:" + "0".repeat(64));
    stage.cleanup(pushed);
    assertFalse(DOCKER.imageExists(second));
    assertTrue(pushed.lines().contains("removed the built image " + second), pushed.lines().toString());

    // remove-image = false is ignored (and warned about): nobody may keep a job's private name.
    var keepAll = job(taken, Map.of());
    BuildkitStage keeping = stage(map("remove-image", false));
    keeping.execute(keepAll);
    keeping.cleanup(keepAll);
    assertFalse(DOCKER.imageExists(built(keepAll)));

    // A build that failed, and a cleanup after the push stage already removed the name: quiet.
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\nRUN exit 7\n");
    var failed = job(taken, Map.of());
    assertThrows(StageException.class, () -> stage.execute(failed));
    String failedName = failed.get(BuildkitStage.BUILT_NAME).orElseThrow();
    stage.cleanup(failed);
    assertFalse(DOCKER.imageExists(failedName));
    assertFalse(failed.lines().stream().anyMatch(l -> l.contains("could not remove")), failed.lines().toString());
    assertEquals(takenId, imageId(taken), "the caller's name still holds the image that had it");
  }

  @Test
  void twoJobsWithTheSameImageNameBuildTheirOwnImagesAtOnce() throws Exception {
    String image = image();
    BuildkitStage stage = stage(map());
    List<CompletableFuture<StreamingJobContext>> jobs = new ArrayList<>();
    for (String content : List.of("first-" + System.nanoTime(), "second-" + System.nanoTime())) {
      Path dir = Files.createDirectories(tmp.resolve(content));
      Fixtures.write(dir, "Dockerfile", "FROM local/busybox:1\nRUN echo " + content + " > /c.txt && sleep 1\n"
          + "CMD [\"cat\", \"/c.txt\"]\n");
      var job = Fixtures.job(Fixtures.request(image, "Dockerfile", ".", Map.of()), workspace, dir);
      jobs.add(CompletableFuture.supplyAsync(() -> {
        try {
          stage.execute(job);
          return job;
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }));
    }
    StreamingJobContext a = jobs.get(0).get(2, TimeUnit.MINUTES);
    StreamingJobContext b = jobs.get(1).get(2, TimeUnit.MINUTES);
    String builtA = built(a);
    String builtB = built(b);
    assertFalse(builtA.equals(builtB), builtA);
    assertTrue(DOCKER.runRm(builtA).output().startsWith("first-"), "each job's name holds its own build");
    assertTrue(DOCKER.runRm(builtB).output().startsWith("second-"));
    assertFalse(DOCKER.imageExists(image), "neither made the shared name");
    stage.cleanup(a);
    assertFalse(DOCKER.imageExists(builtA));
    assertTrue(DOCKER.imageExists(builtB), "one job's cleanup leaves the other's image");
    stage.cleanup(b);
    assertFalse(DOCKER.imageExists(builtB));
  }

  @Test
  void theDefaultNetworkIsTheEnginesNotTheHosts() throws Exception {
    // On an engine with a bridge, RUN steps get a network namespace of their own; on this test
    // engine (--bridge=none) there is no default network at all and RUN cannot start. Either way a
    // build does not get the host's network unless it is configured.
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\nRUN cat /proc/net/dev > /net.txt\n"
        + "CMD [\"cat\", \"/net.txt\"]\n");
    var job = job(image(), Map.of());
    BuildkitStage stage = stage(map("network", "default"));
    try {
      stage.execute(job);
      List<String> seen = DOCKER.runRm(built(job)).output().lines().skip(2)
          .map(l -> l.substring(0, l.indexOf(':')).strip()).sorted().toList();
      assertNotEquals(hostInterfaces(), seen, "a RUN step on the default network saw the host's interfaces");
    } catch (StageException e) {
      assertEquals("build.failed", e.code());
      assertTrue(e.getMessage().contains("network bridge not found"), e.getMessage());
    } finally {
      stage.cleanup(job);
    }
  }

  private static List<String> hostInterfaces() throws IOException {
    return Files.readAllLines(Path.of("/proc/net/dev")).stream()
        .skip(2)
        .map(l -> l.substring(0, l.indexOf(':')).strip())
        .sorted()
        .toList();
  }

  @Test
  void aBuildSecretIsReadableByItsRunMountAndNowhereElse() throws Exception {
    String value = "s3cr3t-" + java.util.UUID.randomUUID();
    String nonce = "secret-step-" + System.nanoTime();
    Fixtures.write(
        source,
        "Dockerfile",
        "FROM local/busybox:1\n"
            + "ARG VISIBLE\n"
            + "RUN echo \"$VISIBLE\" > /visible.txt\n"
            + "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null"
            + " && /bin/busybox sha256sum /run/secrets/tok > /sum\n"
            + "RUN --mount=type=secret,id=tok sleep 3 && echo " + nonce + "\n"
            + "RUN test ! -e /run/secrets/tok && echo no-secret-without-its-mount\n"
            + "CMD [\"cat\", \"/sum\"]\n");
    var job = Fixtures.job(
        // The build arg changes every run: BuildKit's cache does not key on a secret's value, so a
        // step that reads it would otherwise be reused from an earlier run with another value.
        Fixtures.request(image(), "Dockerfile", ".", Map.of("VISIBLE", "a build arg " + nonce), Map.of("tok", value)),
        workspace, source);
    BuildkitStage stage = stage(map());
    CompletableFuture<Throwable> outcome = CompletableFuture.supplyAsync(() -> {
      try {
        stage.execute(job);
        return null;
      } catch (Throwable t) {
        return t;
      }
    });

    // While the step with the mount runs: the value is in no process's arguments or environment.
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    boolean sawStep = false;
    boolean sawFile = false;
    Set<Long> scanned = new java.util.HashSet<>();
    while (!outcome.isDone() && System.nanoTime() < end) {
      for (ProcessHandle p : ProcessHandle.allProcesses().toList()) {
        String cmdline = procFile(p, "cmdline");
        sawStep |= cmdline.contains(nonce);
        assertFalse(cmdline.contains(value), "the secret in the arguments of " + p.pid() + ": " + cmdline);
        assertFalse(procFile(p, "environ").contains(value), "the secret in the environment of " + p.pid() + " "
            + cmdline);
        scanned.add(p.pid());
        if (cmdline.contains(" build --progress=plain") && cmdline.contains("src=")) {
          Path file = Path.of(cmdline.replaceFirst("(?s).*id=tok,src=(\\S+).*", "$1"));
          if (Files.exists(file)) {
            sawFile = true;
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(file)));
            assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(file.getParent())));
            assertFalse(file.startsWith(workspace), "outside the workspace and the context: " + file);
          }
        }
      }
      Thread.sleep(20);
    }
    assertEquals(null, outcome.get(2, TimeUnit.MINUTES), () -> String.join("\n", job.lines()));
    assertTrue(sawStep, "the RUN step with the mount was seen running; scanned " + scanned.size() + " processes");
    assertTrue(sawFile, "the CLI's --secret file was seen, mode 600 in a 700 directory");
    String built = built(job);

    String expected = sha256(value) + "  /run/secrets/tok\n";
    assertEquals(expected, DOCKER.runRm(built).output(), "the RUN step read the secret");
    assertTrue(job.lines().stream().anyMatch(l -> l.contains("no-secret-without-its-mount")), job.lines().toString());
    DockerEngine.Result history = DOCKER.docker("history", "--no-trunc", built);
    assertTrue(history.isSuccess(), history.output());
    assertFalse(history.output().contains(value), history.output());
    assertTrue(history.output().contains("a build arg") || history.output().contains("VISIBLE"),
        "build args, unlike secrets, are in the history: " + history.output());
    DockerEngine.Result inspect = DOCKER.docker("image", "inspect", built);
    assertFalse(inspect.output().contains(value), inspect.output());
    assertFalse(DOCKER.docker("save", built).output().contains(value), "the secret is in no layer");
    for (String line : job.lines()) {
      assertFalse(line.contains(value), "the secret in the job's log: " + line);
    }
    assertTrue(job.secrets().contains(value), "registered for masking");
    Path dir = job.get(BuildkitStage.SECRETS_DIR).orElseThrow();
    assertFalse(Files.exists(dir), "the secrets' directory is gone after the build: " + dir);
    stage.cleanup(job);
    assertFalse(DOCKER.imageExists(built));
  }

  private static String procFile(ProcessHandle p, String name) {
    try {
      return new String(Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), name)), StandardCharsets.UTF_8)
          .replace('\0', ' ');
    } catch (IOException | RuntimeException e) {
      return ""; // gone, or not ours to read
    }
  }

  private static String sha256(String value) throws Exception {
    return java.util.HexFormat.of().formatHex(
        java.security.MessageDigest.getInstance("SHA-256").digest(value.getBytes(StandardCharsets.UTF_8)));
  }

  private static String imageId(String image) {
    DockerEngine.Result r = DOCKER.docker("image", "inspect", "--format", "{{.Id}}", image);
    assertTrue(r.isSuccess(), r.output());
    return r.output().strip();
  }

  @Test
  void runStepsSeeOnlyLoopbackWithNetworkNone() throws Exception {
    assertEquals(List.of("lo"), interfacesSeenByRun("none"));
  }

  @Test
  void runStepsSeeTheHostsInterfacesWithNetworkHost() throws Exception {
    List<String> host = interfacesSeenByRun("host");
    List<String> mine =
        Files.readAllLines(Path.of("/proc/net/dev")).stream()
            .skip(2)
            .map(l -> l.substring(0, l.indexOf(':')).strip())
            .sorted()
            .toList();
    assertEquals(mine, host);
  }

  private List<String> interfacesSeenByRun(String network) throws Exception {
    Fixtures.write(
        source,
        "Dockerfile",
        "FROM local/busybox:1\n"
            + "RUN echo " + network + " && cat /proc/net/dev > /net.txt\n"
            + "CMD [\"cat\", \"/net.txt\"]\n");
    var job = job(image(), Map.of());
    stage(map("network", network)).execute(job);
    DockerEngine.Result run = DOCKER.runRm(built(job));
    assertEquals(0, run.exitCode(), run.output());
    return run.output().lines()
        .skip(2)
        .map(l -> l.substring(0, l.indexOf(':')).strip())
        .sorted()
        .toList();
  }

  @Test
  void buildsTheConfiguredTargetForTheConfiguredPlatform() throws Exception {
    Fixtures.write(
        source,
        "Dockerfile",
        "FROM local/busybox:1 AS base\n"
            + "RUN echo base > /base.txt\n"
            + "FROM base AS runtime\n"
            + "RUN echo runtime > /runtime.txt\n"
            + "FROM runtime AS tests\n"
            + "RUN echo tests > /tests.txt\n");
    var job = job(image(), Map.of());
    stage(map("target", "runtime", "platform", "linux/amd64", "network", "none")).execute(job);
    String image = built(job);
    DockerEngine.Result ls = DOCKER.runRm(image, "ls", "/");
    assertTrue(ls.output().contains("runtime.txt"), ls.output());
    assertFalse(ls.output().contains("tests.txt"), "a later stage was built: " + ls.output());
    assertEquals("linux/amd64\n", DOCKER.docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image).output());
  }

  @Test
  void theTargetOptionBuildsTheChosenStageInsteadOfTheConfiguredOne() throws Exception {
    String nonce = Long.toString(System.nanoTime());
    Fixtures.write(
        source,
        "Dockerfile",
        "FROM local/busybox:1 AS first\n"
            + "RUN echo first-" + nonce + " > /stage.txt\n"
            + "CMD [\"cat\", \"/stage.txt\"]\n"
            + "FROM local/busybox:1 AS second\n"
            + "RUN echo second-" + nonce + " > /stage.txt\n"
            + "CMD [\"cat\", \"/stage.txt\"]\n");
    BuildkitStage stage = stage(map("target", "second"));

    var chosen = Fixtures.job(Fixtures.request(image(), "Dockerfile", ".", Map.of()), workspace, source,
        Map.of("target", "first"));
    stage.execute(chosen);
    assertEquals("first-" + nonce + "\n", DOCKER.runRm(built(chosen)).output(), "the job's target, not the configured one");
    assertTrue(chosen.lines().stream().anyMatch(l -> l.contains(", target first")), chosen.lines().toString());

    var configured = job(image(), Map.of());
    stage.execute(configured);
    assertEquals("second-" + nonce + "\n", DOCKER.runRm(built(configured)).output(), "without the option: the configured target");
  }

  @Test
  void noCacheRunsAStepAgainThatWouldOtherwiseComeFromTheCache() throws Exception {
    String nonce = Long.toString(System.nanoTime());
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\n"
        // Different on every run of the step: a random UUID from the kernel.
        + "RUN echo ran-" + nonce + " && cat /proc/sys/kernel/random/uuid > /f\n"
        + "CMD [\"cat\", \"/f\"]\n");
    // What the step prints when it runs, as BuildKit's plain progress shows it: "#5 0.142 ran-...".
    java.util.function.Predicate<String> stepRan =
        l -> l.matches("#[0-9]+ [0-9.]+ ran-" + nonce);
    BuildkitStage stage = stage(map());
    var first = job(image(), Map.of());
    stage.execute(first);
    String original = DOCKER.runRm(built(first)).output();
    assertTrue(first.lines().stream().anyMatch(stepRan), first.lines().toString());

    var cached = job(image(), Map.of());
    stage.execute(cached);
    assertEquals(original, DOCKER.runRm(built(cached)).output(), "the same step came from the cache");
    assertTrue(cached.lines().stream().noneMatch(stepRan), "the step did not run: " + cached.lines());
    assertTrue(runStepCached(cached.lines(), nonce), "the RUN step is CACHED: " + cached.lines());

    var fresh = Fixtures.job(Fixtures.request(image(), "Dockerfile", ".", Map.of()), workspace, source,
        Map.of("no-cache", "true"));
    stage.execute(fresh);
    String rerun = DOCKER.runRm(built(fresh)).output();
    assertTrue(rerun.matches("[0-9a-f-]{36}\n"), rerun);
    assertNotEquals(original, rerun, "no-cache ran the step again");
    assertTrue(fresh.lines().stream().anyMatch(stepRan), "the step ran: " + fresh.lines());
    assertFalse(runStepCached(fresh.lines(), nonce), "the RUN step is not CACHED: " + fresh.lines());
    assertTrue(fresh.lines().stream().anyMatch(l -> l.contains(", no cache")), fresh.lines().toString());
  }

  /** Whether BuildKit's progress says "#N CACHED" for the step "#N [..] RUN echo ran-NONCE ...". */
  private static boolean runStepCached(List<String> lines, String nonce) {
    String step = lines.stream().filter(l -> l.matches("#[0-9]+ \\[.*\\] RUN echo ran-" + nonce + " .*"))
        .map(l -> l.substring(0, l.indexOf(' '))).findFirst()
        .orElseThrow(() -> new AssertionError("no RUN step in " + lines));
    return lines.contains(step + " CACHED");
  }

  @Test
  void aFailingRunStepIsBuildFailedWithTheLastLines() throws Exception {
    StringBuilder noise = new StringBuilder();
    for (int i = 1; i <= 30; i++) {
      noise.append("noise-line-").append(i).append(' ');
    }
    Fixtures.write(
        source,
        "Dockerfile",
        "FROM local/busybox:1\n"
            + "RUN for w in " + noise + "; do echo \"$w\"; done; echo boom-marker; exit 3\n");
    String image = image();
    var job = job(image, Map.of());
    StageException e = assertThrows(StageException.class, () -> stage(map()).execute(job));
    assertEquals("build.failed", e.code());
    assertEquals(ErrorKind.EXTERNAL, e.kind());
    String message = e.getMessage();
    assertTrue(message.contains("boom-marker"), message);
    assertTrue(message.contains("exit code: 3"), message);
    assertTrue(message.lines().count() <= BuildkitStage.TAIL_LINES + 1, message);
    assertTrue(job.lines().stream().anyMatch(l -> l.contains("noise-line-1")), "every line is logged");
    assertTrue(job.get(StageKeys.LOCAL_IMAGE).isEmpty());
    assertFalse(DOCKER.imageExists(image));
    assertFalse(DOCKER.imageExists(job.get(BuildkitStage.BUILT_NAME).orElseThrow()));
  }

  @Test
  void anEngineThatCannotBeReachedIsEngineUnreachable() throws Exception {
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\n");
    Map<String, String> env = new HashMap<>(DOCKER.environment());
    env.put("DOCKER_HOST", "unix://" + tmp.resolve("no-engine-here.sock"));
    BuildkitStage stage =
        Fixtures.stage(map("docker-cli", DOCKER.cli().toString()), Fixtures.worker(env), Clock.systemUTC());
    StageException e = assertThrows(StageException.class, () -> stage.execute(job(image(), Map.of())));
    assertEquals("build.engine-unreachable", e.code());
    assertEquals(ErrorKind.EXTERNAL, e.kind());
    assertTrue(e.getMessage().contains("Cannot connect to the Docker daemon"), e.getMessage());
  }

  // ---------------------------------------------------------------------------------------------
  // Stopping a build: nothing of the process tree and nothing in the engine may keep running.

  private void writeSleepingDockerfile() {
    Fixtures.write(
        source,
        "Dockerfile",
        "FROM local/busybox:1\n"
            + "RUN echo started-" + System.nanoTime() + " && sleep 60\n");
  }

  @Test
  void cancellingTheJobStopsEverythingWithinTwoSeconds() throws Exception {
    // What the runtime does: run the cancel actions, then interrupt the stage's thread.
    Running running = startSleepingBuild(map());
    long cancelled = System.nanoTime();
    running.job.cancel();
    running.thread.interrupt();
    long gone = running.awaitAllGone(cancelled);
    report("cancel (onCancel + interrupt)", gone);
    assertInstanceOf(InterruptedException.class, running.failure());
  }

  @Test
  void interruptingTheStageAloneStopsEverythingWithinTwoSeconds() throws Exception {
    Running running = startSleepingBuild(map());
    long interrupted = System.nanoTime();
    running.thread.interrupt();
    long gone = running.awaitAllGone(interrupted);
    report("interrupt only", gone);
    assertInstanceOf(InterruptedException.class, running.failure());
  }

  @Test
  void cancelActionsAloneStopEverythingWithinTwoSeconds() throws Exception {
    Running running = startSleepingBuild(map());
    long cancelled = System.nanoTime();
    CompletableFuture.runAsync(running.job::cancel);
    long gone = running.awaitAllGone(cancelled);
    report("onCancel only", gone);
    assertInstanceOf(InterruptedException.class, running.failure());
  }

  @Test
  void theStageHasNoTimerOfItsOwnTheRuntimeOwnsTheTimeout() throws Exception {
    // At `timeout` the runtime cancels and interrupts the stage (the tests above: all gone within
    // two seconds, reported as worker.stage-timeout). The stage itself never stops a build for
    // running long, so a build longer than `timeout` finishes here, where no runtime watches.
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\nRUN echo " + System.nanoTime() + " && sleep 3\n");
    var job = job(image(), Map.of());
    stage(map("timeout", "1s")).execute(job);
    assertTrue(DOCKER.imageExists(built(job)));
  }

  private void report(String what, long goneMillis) {
    System.out.println("measured: " + what + " to no build process and no RUN step left: " + goneMillis + " ms");
  }

  /** A build whose RUN step sleeps for a minute, started on its own thread and seen sleeping. */
  private Running startSleepingBuild(Map<String, Object> overrides) throws Exception {
    writeSleepingDockerfile();
    Set<Long> before = sleepers(Set.of()).stream().map(ProcessHandle::pid).collect(Collectors.toSet());
    String image = image();
    var job = job(image, Map.of());
    BuildkitStage stage = stage(overrides);
    Running running = new Running(job, image, before);
    running.thread =
        new Thread(
            () -> {
              try {
                stage.execute(job);
                running.result.complete(null);
              } catch (Throwable t) {
                running.result.complete(t);
              }
            },
            "stage-under-test");
    running.started = System.nanoTime();
    running.thread.start();

    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (sleepers(before).isEmpty()) {
      assertTrue(System.nanoTime() < end, () -> "the RUN step never started; log:\n" + String.join("\n", job.lines()));
      assertFalse(running.result.isDone(), () -> "the build ended early: " + running.result.join());
      Thread.sleep(20);
    }
    assertTrue(
        job.awaitLine(l -> l.contains("started-"), Duration.ofSeconds(10)),
        "the RUN step's output arrives in the log while the build runs");
    running.tree = buildProcesses();
    assertTrue(
        running.tree.stream().anyMatch(p -> cmdline(p).contains("build.sh")),
        () -> "build.sh runs: " + describe(running.tree));
    assertTrue(
        running.tree.stream().anyMatch(p -> cmdline(p).contains(" build --progress=plain")),
        () -> "docker build runs: " + describe(running.tree));
    return running;
  }

  private final class Running {
    final StreamingJobContext job;
    final String image;
    final Set<Long> sleepersBefore;
    final CompletableFuture<Throwable> result = new CompletableFuture<>();
    Thread thread;
    long started;
    List<ProcessHandle> tree;

    Running(StreamingJobContext job, String image, Set<Long> sleepersBefore) {
      this.job = job;
      this.image = image;
      this.sleepersBefore = sleepersBefore;
    }

    /**
     * Waits until no process of the build's tree and no {@code sleep 60} runs, asserts that took
     * at most two seconds from {@code since}, and returns how long it took in milliseconds.
     */
    long awaitAllGone(long since) throws Exception {
      long end = since + TimeUnit.SECONDS.toNanos(30);
      while (true) {
        List<ProcessHandle> left = new ArrayList<>(tree.stream().filter(ProcessTree::isRunning).toList());
        left.addAll(sleepers(sleepersBefore));
        if (left.isEmpty()) {
          break;
        }
        assertTrue(System.nanoTime() < end, () -> "still running after 30 s: " + describe(left));
        Thread.sleep(5);
      }
      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since);
      assertTrue(
          millis <= CANCEL_LIMIT.toMillis(),
          "the build's processes and its RUN step took " + millis + " ms to go");
      thread.join(TimeUnit.SECONDS.toMillis(5));
      assertFalse(thread.isAlive(), "the stage returned");
      // Nothing keeps building in the engine: no image appears later either.
      Thread.sleep(500);
      assertTrue(sleepers(sleepersBefore).isEmpty());
      assertFalse(DOCKER.imageExists(image));
      assertFalse(DOCKER.imageExists(job.get(BuildkitStage.BUILT_NAME).orElseThrow()));
      assertTrue(job.get(StageKeys.LOCAL_IMAGE).isEmpty());
      return millis;
    }

    Throwable failure() {
      return result.join();
    }
  }

  /** This JVM's descendants that belong to a build: build.sh and the docker CLI. */
  private static List<ProcessHandle> buildProcesses() {
    return ProcessHandle.current()
        .descendants()
        .filter(ProcessTree::isRunning)
        .filter(p -> cmdline(p).contains("build.sh") || cmdline(p).contains("docker"))
        .toList();
  }

  /** Processes anywhere on the host (the RUN step runs under the engine) running {@code sleep 60}. */
  private static List<ProcessHandle> sleepers(Set<Long> except) {
    return ProcessHandle.allProcesses()
        .filter(p -> !except.contains(p.pid()))
        .filter(p -> cmdline(p).contains("sleep 60"))
        .filter(ProcessTree::isRunning)
        .toList();
  }

  private static String cmdline(ProcessHandle p) {
    try {
      byte[] raw = Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline"));
      return new String(raw, StandardCharsets.UTF_8).replace('\0', ' ').strip();
    } catch (IOException | RuntimeException e) {
      return p.info().commandLine().orElse("");
    }
  }

  private static String describe(List<ProcessHandle> processes) {
    return processes.stream().map(p -> p.pid() + " " + cmdline(p)).collect(Collectors.joining("; "));
  }
}

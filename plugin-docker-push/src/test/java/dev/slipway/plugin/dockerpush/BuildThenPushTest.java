package dev.slipway.plugin.dockerpush;

import static dev.slipway.plugin.dockerpush.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.slipway.plugin.buildkit.BuildkitStageFactory;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.LocalRegistry;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real buildkit stage, then this one, on the shared engine of {@code scripts/test-services.sh
 * up}, cleaned up in reverse order as the runtime does: the engine is shared, so a job never
 * builds under, retags or removes a name that is not its own, and leaves none of its own behind,
 * whatever the outcome. An image named like the job's {@code image_name} ({@code x/y-<run>:1}), and one
 * named like its push destination, belong to someone else and keep their ids.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class BuildThenPushTest {
  static final DockerEngine DOCKER = DockerEngine.fromEnvironment();
  static final LocalRegistry REGISTRY = LocalRegistry.fromEnvironment();
  /**
   * Unique per run: other checkouts may run this class on the same shared engine and registry at
   * the same time, and this stage's lock per name covers one worker process only.
   */
  static final String REPOSITORY = "x/y-" + Fixtures.unique();
  static final String IMAGE_NAME = REPOSITORY + ":1";

  @TempDir Path tmp;
  private final List<String> toRemove = new CopyOnWriteArrayList<>();

  @BeforeEach
  void services() {
    Optional<String> engine = DOCKER.skipReason();
    Assumptions.assumeTrue(engine.isEmpty(), () -> "needs a Docker engine: " + engine.orElseThrow());
    Optional<String> registry = REGISTRY.skipReason();
    Assumptions.assumeTrue(registry.isEmpty(), () -> "needs the test registry: " + registry.orElseThrow());
  }

  @AfterEach
  void removeImages() {
    DOCKER.removeImages(toRemove.toArray(String[]::new));
  }

  /** The worker: the repository as its home, so that scripts/build.sh resolves. */
  record Worker(Path home) implements WorkerEnvironment {
    @Override
    public String workerId() {
      return "test-worker";
    }

    @Override
    public Optional<String> region() {
      return Optional.empty();
    }

    @Override
    public Optional<String> env(String name) {
      return Optional.ofNullable(System.getenv(name));
    }
  }

  static Path repositoryRoot() {
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isRegularFile(dir.resolve("scripts/build.sh"))) {
      dir = dir.getParent();
    }
    return dir;
  }

  /** The buildkit stage through its factory, as the runtime makes it; RUN steps get no network. */
  static Stage buildStage() throws Exception {
    var config = ConfigFactory.parseMap(map(
            "docker-cli", DOCKER.cli().toString(),
            "docker-host", DOCKER.host().orElseThrow(),
            "network", "none"))
        .withFallback(ConfigFactory.defaultReference().getConfig("worker.stages.buildkit"))
        .resolve();
    return new BuildkitStageFactory().create(config, new Worker(repositoryRoot()));
  }

  static Stage pushStage(String registry) throws Exception {
    return new DockerPushStageFactory().create(Fixtures.config(map(
        "docker-host", DOCKER.host().orElseThrow(),
        "registry", registry,
        "auth", map("username", REGISTRY.user(), "password", REGISTRY.password()),
        "retry", map("max-attempts", 1))), Fixtures.worker(Map.of()));
  }

  /** A job for {@code image_name} whose git stage has published a checkout that holds {@code content}. */
  RecordingJobContext job(String content) throws IOException {
    return job(content, List.of());
  }

  /** Such a job, pushing under {@code extraTags} too. */
  RecordingJobContext job(String content, List<String> extraTags) throws IOException {
    Path source = Files.createDirectories(tmp.resolve("src-" + Fixtures.unique()));
    Files.writeString(source.resolve("content"), content + "\n");
    Files.writeString(source.resolve("Dockerfile"),
        "FROM local/busybox:1\nCOPY content /content\nCMD [\"cat\", \"/content\"]\n");
    JobRequestView request = JobRequestView.builder("https://git.example.com/team/app.git", IMAGE_NAME)
        .jobId("Job.Isolation_" + Fixtures.unique()).branch("main").token(Optional.of(Secret.of(Fixtures.TOKEN)))
        .extraTags(extraTags).build();
    RecordingJobContext job = new RecordingJobContext(request, Files.createDirectories(tmp.resolve("ws-" + Fixtures.unique())));
    job.publish(StageKeys.SOURCE_DIR, source);
    job.publish(StageKeys.COMMIT_SHA, "3f786850e387550fdab836ed7e6dc881de23001b");
    return job;
  }

  /** Runs the stages in order until one fails, then cleans up in reverse, as the runtime does. */
  static Throwable run(RecordingJobContext job, Stage... stages) {
    List<Stage> ran = new ArrayList<>();
    Throwable failure = null;
    try {
      for (Stage stage : stages) {
        ran.add(stage);
        stage.execute(job);
      }
    } catch (Throwable t) {
      failure = t;
    } finally {
      Thread.interrupted();
      for (int i = ran.size() - 1; i >= 0; i--) {
        ran.get(i).cleanup(job);
      }
    }
    return failure;
  }

  /** Someone else's image, under {@code names}: built from busybox with a label of its own. */
  String someoneElsesImage(String... names) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("old-" + Fixtures.unique()));
    Files.writeString(dir.resolve("old"), "someone else's " + Fixtures.unique() + "\n");
    Files.writeString(dir.resolve("Dockerfile"),
        "FROM local/busybox:1\nLABEL dev.slipway.test.owner=someone-else\nCOPY old /old\n");
    DockerEngine.Result built = DOCKER.docker("build", "-q", "--network=none", "-t", names[0], dir.toString());
    assertTrue(built.isSuccess(), built.output());
    for (String name : names) {
      assertTrue(DOCKER.docker("tag", names[0], name).isSuccess());
      toRemove.add(name);
    }
    return imageId(names[0]);
  }

  static String imageId(String name) {
    DockerEngine.Result r = DOCKER.docker("image", "inspect", "--format", "{{.Id}}", name);
    assertTrue(r.isSuccess(), name + ": " + r.output());
    return r.output().strip();
  }

  /**
   * Every local name the job made: its private build name and any name that held another
   * image during its push, as its log names them; each must be gone.
   */
  static void assertNoNameOfTheJobIsLeft(RecordingJobContext job) {
    List<String> names = new ArrayList<>();
    job.get(StageKeys.LOCAL_IMAGE).ifPresent(names::add);
    for (String line : job.lines()) {
      var m = java.util.regex.Pattern.compile("(slipway\\.local/[a-z0-9._-]+:[a-z]+)").matcher(line);
      while (m.find()) {
        names.add(m.group(1));
      }
    }
    assertFalse(names.isEmpty(), "the job named its private names in its log: " + job.lines());
    String jobPrefix = "slipway.local/job-isolation-";
    List<String> all = List.of(DOCKER.docker("images", "--format", "{{.Repository}}:{{.Tag}}").output().split("\n"));
    for (String name : names) {
      assertTrue(name.startsWith("slipway.local/"), name);
      assertFalse(all.contains(name), "left in the engine: " + name);
    }
    String privateName = job.get(StageKeys.LOCAL_IMAGE).orElse(null);
    if (privateName != null) {
      assertTrue(privateName.startsWith(jobPrefix), "the private name is made from the job id: " + privateName);
    }
  }

  @Test
  void aFailedPushLeavesTheImagesUnderTheCallersNameAndTheDestinationAsTheyWere() throws Exception {
    int closed;
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      closed = socket.getLocalPort();
    }
    String destination = "127.0.0.1:" + closed + "/" + IMAGE_NAME;
    String old = someoneElsesImage(IMAGE_NAME, destination);
    RecordingJobContext job = job("built by the job " + Fixtures.unique());
    try (Stage build = buildStage(); Stage push = pushStage("127.0.0.1:" + closed)) {
      Throwable failure = run(job, build, push);
      StageException e = assertInstanceOf(StageException.class, failure, String.valueOf(failure));
      assertEquals("push.failed", e.code(), e.getMessage());
    }
    String built = job.get(StageKeys.LOCAL_IMAGE).orElseThrow();
    assertNotEquals(IMAGE_NAME, built, "built under a private name");
    assertEquals(old, imageId(IMAGE_NAME), "the image under image_name is untouched");
    assertEquals("someone-else", DOCKER.labels(IMAGE_NAME).get("dev.slipway.test.owner"));
    assertEquals(old, imageId(destination), "the image under the destination name has it back");
    assertTrue(job.lines().stream().anyMatch(l -> l.contains("already has another image under " + destination)),
        job.lines().toString());
    assertNoNameOfTheJobIsLeft(job);
  }

  @Test
  void aSuccessfulPushPushesTheJobsBuildAndLeavesNoNameOfItsOwn() throws Exception {
    String destination = REGISTRY.address() + "/" + IMAGE_NAME;
    String old = someoneElsesImage(IMAGE_NAME, destination);
    String content = "built by the job " + Fixtures.unique();
    RecordingJobContext job = job(content);
    try (Stage build = buildStage(); Stage push = pushStage(REGISTRY.address())) {
      assertNull(run(job, build, push));
    }
    String digest = job.get(StageKeys.IMAGE_DIGEST).orElseThrow();
    assertEquals(Optional.of(digest), REGISTRY.manifestDigest(REPOSITORY, "1"));
    assertEquals(Optional.of(destination), job.get(StageKeys.IMAGE_URI));
    assertEquals(old, imageId(IMAGE_NAME));
    assertEquals(old, imageId(destination));
    assertNoNameOfTheJobIsLeft(job);
    assertEquals(content, pullAndRun(destination.substring(0, destination.lastIndexOf(':')) + "@" + digest));
  }

  @Test
  void twoJobsWithTheSameImageNameAtOnceEachPushTheirOwnBuild() throws Exception {
    String destination = REGISTRY.address() + "/" + IMAGE_NAME;
    toRemove.add(destination);
    Map<RecordingJobContext, String> contents = new LinkedHashMap<>();
    for (int i = 0; i < 2; i++) {
      String content = "job " + i + " " + Fixtures.unique();
      contents.put(job(content), content);
    }
    try (Stage build = buildStage(); Stage push = pushStage(REGISTRY.address())) {
      List<CompletableFuture<Throwable>> runs = new ArrayList<>();
      for (RecordingJobContext job : contents.keySet()) {
        runs.add(CompletableFuture.supplyAsync(() -> run(job, build, push)));
      }
      for (CompletableFuture<Throwable> r : runs) {
        assertNull(r.get(2, TimeUnit.MINUTES));
      }
    }
    List<String> digests = new ArrayList<>();
    for (var entry : contents.entrySet()) {
      RecordingJobContext job = entry.getKey();
      String digest = job.get(StageKeys.IMAGE_DIGEST).orElseThrow();
      digests.add(digest);
      assertEquals(entry.getValue(), pullAndRun(REGISTRY.address() + "/" + REPOSITORY + "@" + digest),
          "each job's digest is its own build: " + job.lines());
      assertNoNameOfTheJobIsLeft(job);
    }
    assertNotEquals(digests.get(0), digests.get(1));
    System.out.println("[figure] two jobs pushing " + IMAGE_NAME + " at once; one waited for the other's push: "
        + contents.keySet().stream().anyMatch(j -> j.lines().stream().anyMatch(l -> l.startsWith("waiting for another job"))));
    assertFalse(DOCKER.imageExists(IMAGE_NAME), "neither made the caller's name");
    assertFalse(DOCKER.imageExists(destination), "nor left the destination name");
  }

  @Test
  void aCancelledPushGivesTheNameBackAndLeavesNoNameOfItsOwn() throws Exception {
    try (RegistryProxy proxy = RegistryProxy.start(REGISTRY.address()).stallUploads()) {
      String destination = proxy.address() + "/" + IMAGE_NAME;
      String old = someoneElsesImage(IMAGE_NAME, destination);
      RecordingJobContext job = job("cancelled " + Fixtures.unique());
      try (Stage build = buildStage(); Stage push = pushStage(proxy.address())) {
        CompletableFuture<Throwable> outcome = new CompletableFuture<>();
        Thread thread = new Thread(() -> outcome.complete(run(job, build, push)), "job-to-cancel");
        thread.start();
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (proxy.requests().stream().noneMatch(r -> r.contains("/blobs/uploads/")) && System.nanoTime() < end) {
          Thread.sleep(20);
        }
        assertTrue(DOCKER.imageExists(destination));
        assertNotEquals(old, imageId(destination), "during the push the name is the job's");
        // What the runtime does on cancel or timeout: the cancel actions, then the interrupt.
        job.cancel();
        thread.interrupt();
        assertInstanceOf(InterruptedException.class, outcome.get(30, TimeUnit.SECONDS));
      }
      assertEquals(old, imageId(IMAGE_NAME));
      assertEquals(old, imageId(destination));
      assertNoNameOfTheJobIsLeft(job);
    }
  }

  @Test
  void removeLocalTagsFalseLeavesThePushedNamesOnThePushedImageAndOthersImagesKeepTheirIds() throws Exception {
    String base = REGISTRY.address() + "/" + REPOSITORY;
    String destination = base + ":1";
    String extraMain = base + ":main";
    String extraLatest = base + ":latest";
    toRemove.addAll(List.of(destination, extraMain, extraLatest));
    // Someone else's image under the caller's name and the destination, and another one under the
    // extra tag "main" only: the one loses the destination name, the other its only name.
    String old = someoneElsesImage(IMAGE_NAME, destination);
    String onlyName = someoneElsesImage(extraMain);
    toRemove.addAll(List.of(old, onlyName));
    String content = "kept by the job " + Fixtures.unique();
    RecordingJobContext job = job(content, List.of("main", "latest"))
        .options(StageOptions.of(Map.of("remove-local-tags", "false")));
    try (Stage build = buildStage(); Stage push = pushStage(REGISTRY.address())) {
      push.validate(job.request(), job.options());
      assertNull(run(job, build, push));
    }
    String digest = job.get(StageKeys.IMAGE_DIGEST).orElseThrow();
    assertEquals(Optional.of(List.of(extraMain, extraLatest)), job.get(StageKeys.EXTRA_IMAGE_URIS));
    String pushed = imageId(destination);
    for (String name : List.of(destination, extraMain, extraLatest)) {
      assertEquals(pushed, imageId(name), name + " is left on the one pushed image");
      assertEquals(Optional.of(digest), REGISTRY.manifestDigest(REPOSITORY, name.substring(name.lastIndexOf(':') + 1)));
    }
    DockerEngine.Result repoDigests = DOCKER.docker("image", "inspect", "--format", "{{json .RepoDigests}}", destination);
    assertTrue(repoDigests.output().contains(base + "@" + digest), "the local image is the pushed one: "
        + repoDigests.output());
    assertEquals(content, DOCKER.runRm(destination).output().strip(), "docker run of the kept name runs the build");

    assertEquals(old, imageId(IMAGE_NAME), "the other image keeps its id and its other name");
    assertEquals("someone-else", DOCKER.labels(IMAGE_NAME).get("dev.slipway.test.owner"));
    DockerEngine.Result untagged = DOCKER.docker("image", "inspect", "--format", "{{json .RepoTags}}", onlyName);
    assertTrue(untagged.isSuccess(), "the image that had only the name keeps its id: " + untagged.output());
    assertEquals("[]", untagged.output().strip(), "untagged, as after docker tag over its name");
    assertTrue(job.lines().stream().anyMatch(l -> l.startsWith("kept " + extraMain + " on the pushed image")),
        job.lines().toString());
    assertNoNameOfTheJobIsLeft(job);
  }

  /** Pulls {@code byDigest} as an outsider (a config of its own), runs it, returns what it prints. */
  String pullAndRun(String byDigest) throws IOException {
    Path config = Files.createDirectories(tmp.resolve("docker-config-" + Fixtures.unique()));
    assertTrue(DOCKER.docker("--config", config.toString(), "login", "-u", REGISTRY.user(), "-p", REGISTRY.password(),
        REGISTRY.address()).isSuccess());
    DockerEngine.Result pull = DOCKER.docker("--config", config.toString(), "pull", byDigest);
    assertTrue(pull.isSuccess(), pull.output());
    toRemove.add(byDigest);
    DockerEngine.Result run = DOCKER.runRm(byDigest);
    assertTrue(run.isSuccess(), run.output());
    return run.output().strip();
  }
}

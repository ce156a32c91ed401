package dev.slipway.plugin.dockerpush;

import static dev.slipway.plugin.dockerpush.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.LocalRegistry;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The stage against the real parts that {@code scripts/test-services.sh up} starts: Debian's
 * Docker engine and the CNCF distribution registry with htpasswd auth, both on loopback. Where a
 * registry must misbehave, a {@link RegistryProxy} on 127.0.0.1 stands in front of the real one.
 * Skipped with the reason when the services are not there; failed instead under
 * {@code SLIPWAY_REQUIRE_DOCKER=1}.
 */
class RealRegistryPushTest {
  static final DockerEngine DOCKER = DockerEngine.fromEnvironment();
  static final LocalRegistry REGISTRY = LocalRegistry.fromEnvironment();
  /** Every local image a test made, removed at the end. */
  static final List<String> IMAGES = new CopyOnWriteArrayList<>();

  @TempDir static Path tmp;

  // Per test rather than @BeforeAll, so that each test is reported skipped with the reason.
  @BeforeEach
  void services() {
    Optional<String> engine = DOCKER.skipReason();
    Assumptions.assumeTrue(engine.isEmpty(), () -> "needs a Docker engine: " + engine.orElseThrow());
    Optional<String> registry = REGISTRY.skipReason();
    Assumptions.assumeTrue(registry.isEmpty(), () -> "needs the test registry: " + registry.orElseThrow());
  }

  @AfterAll
  static void removeImages() {
    if (!DOCKER.isAvailable()) {
      return;
    }
    // The images built here, and every tag of their repositories under any registry, also those a
    // test that failed half-way left behind.
    List<String> repositories = IMAGES.stream().filter(i -> i.contains(":")).map(RealRegistryPushTest::repositoryOf).toList();
    List<String> remove = new ArrayList<>(IMAGES);
    DockerEngine.Result all = DOCKER.docker("images", "--format", "{{.Repository}}:{{.Tag}}");
    for (String image : all.output().split("\n")) {
      if (repositories.stream().anyMatch(r -> image.startsWith(r + ":") || image.contains("/" + r + ":"))) {
        remove.add(image.strip());
      }
    }
    DOCKER.removeImages(remove.toArray(String[]::new));
  }

  /** A small image of its own (busybox and a unique file), built into the engine. */
  static String buildImage(String name) throws IOException {
    String id = Fixtures.unique() + Fixtures.unique();
    Path dir = Files.createDirectories(tmp.resolve("build-" + id));
    Files.writeString(dir.resolve("id"), id + "\n");
    Files.writeString(dir.resolve("Dockerfile"), "FROM local/busybox:1\nCOPY id /id\nCMD [\"cat\", \"/id\"]\n");
    String image = "slipway-test/" + name + "-" + id + ":1";
    DockerEngine.Result r = DOCKER.docker("build", "-q", "--network=none", "-t", image, dir.toString());
    assertTrue(r.isSuccess(), r.output());
    IMAGES.add(image);
    return image;
  }

  /** The stage's settings for the real registry with slipway's password, plus {@code overrides}. */
  static Map<String, Object> settings(Object... overrides) {
    Map<String, Object> m = new LinkedHashMap<>(map(
        "docker-host", DOCKER.host().orElseThrow(),
        "registry", REGISTRY.address(),
        "auth", map("username", REGISTRY.user(), "password", REGISTRY.password()),
        "retry", map("initial-backoff", "200ms", "max-backoff", "1s")));
    m.putAll(map(overrides));
    return m;
  }

  static Stage stage(Map<String, Object> settings) throws Exception {
    return new DockerPushStageFactory().create(Fixtures.config(settings), Fixtures.worker(Map.of()));
  }

  RecordingJobContext job(String imageName, String localImage) {
    return Fixtures.job(imageName, localImage, tmp);
  }

  static long millisSince(long start) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
  }

  static String repositoryOf(String image) {
    return image.substring(0, image.lastIndexOf(':'));
  }

  @Test
  void pushesConfirmsCleansUpAndTheImageComesBackByDigest() throws Exception {
    String local = buildImage("push");
    String repository = repositoryOf(local);
    String target = REGISTRY.address() + "/" + repository + ":1";
    try (Stage stage = stage(settings())) {
      RecordingJobContext job = job(local, local);
      long start = System.nanoTime();
      stage.execute(job);
      long firstPush = millisSince(start);
      System.out.println("[figure] first push of " + target + ": " + firstPush + " ms");

      String digest = job.get(StageKeys.IMAGE_DIGEST).orElseThrow();
      assertEquals(Optional.of(target), job.get(StageKeys.IMAGE_URI));
      assertEquals(Optional.of(digest), REGISTRY.manifestDigest(repository, "1"),
          "the digest the stage published is the registry's Docker-Content-Digest");
      assertTrue(job.lines().stream().anyMatch(l -> l.endsWith(": Pushed")), job.lines().toString());
      assertFalse(DOCKER.imageExists(target), "the destination name is removed as soon as the push is done");
      for (String line : job.lines()) {
        assertFalse(line.contains(REGISTRY.password()), "password in log line: " + line);
      }
      assertFalse(stage.toString().contains(REGISTRY.password()), stage.toString());

      stage.cleanup(job);
      assertFalse(DOCKER.imageExists(target), "and stays gone after cleanup");
      assertTrue(DOCKER.imageExists(local), "a published name outside slipway.local/ is the build stage's to remove");

      // From the registry alone: nothing local left, pulled back by digest, run.
      DOCKER.removeImages(local);
      assertFalse(DOCKER.imageExists(local));
      Path config = Files.createDirectories(tmp.resolve("docker-config-" + Fixtures.unique()));
      String byDigest = REGISTRY.address() + "/" + repository + "@" + digest;
      DockerEngine.Result login = DOCKER.docker("--config", config.toString(), "login",
          "-u", REGISTRY.user(), "-p", REGISTRY.password(), REGISTRY.address());
      assertTrue(login.isSuccess(), login.output());
      DockerEngine.Result pull = DOCKER.docker("--config", config.toString(), "pull", byDigest);
      assertTrue(pull.isSuccess(), pull.output());
      IMAGES.add(byDigest);
      DockerEngine.Result run = DOCKER.runRm(byDigest);
      assertTrue(run.isSuccess(), run.output());
      assertEquals(local.substring(local.lastIndexOf('-') + 1, local.lastIndexOf(':')), run.output().strip(),
          "the image that comes back is the one that was built");
    }
  }

  @Test
  void extraTagsArePushedAndEachServesTheMainTagsDigest() throws Exception {
    String local = buildImage("extra");
    String repository = repositoryOf(local);
    String base = REGISTRY.address() + "/" + repository;
    try (Stage stage = stage(settings())) {
      RecordingJobContext job = Fixtures.job(Fixtures.request(repository + ":1", List.of("main", "latest")), local, tmp);
      stage.validate(job.request());
      long start = System.nanoTime();
      stage.execute(job);
      System.out.println("[figure] push under 1 + 2 extra tags: " + millisSince(start) + " ms");
      stage.cleanup(job);

      String digest = job.get(StageKeys.IMAGE_DIGEST).orElseThrow();
      assertEquals(Optional.of(base + ":1"), job.get(StageKeys.IMAGE_URI));
      assertEquals(Optional.of(List.of(base + ":main", base + ":latest")), job.get(StageKeys.EXTRA_IMAGE_URIS),
          "one URI per extra tag, in the request's order");
      for (String tag : List.of("1", "main", "latest")) {
        assertEquals(Optional.of(digest), REGISTRY.manifestDigest(repository, tag),
            "the registry serves the same manifest under " + tag);
      }
      for (String tag : List.of("1", "main", "latest")) {
        assertFalse(DOCKER.imageExists(base + ":" + tag), "no destination name left: " + tag);
      }
      assertEquals(4, job.lines().stream().filter(l -> l.endsWith(": Layer already exists")).count(),
          "each extra tag finds both layers already pushed: " + job.lines());
    }
  }

  @Test
  void aSecondPushReusesTheLayersAlreadyInTheRegistry() throws Exception {
    String local = buildImage("again");
    String repository = repositoryOf(local);
    try (Stage stage = stage(settings())) {
      RecordingJobContext first = job(repository + ":1", local);
      long start = System.nanoTime();
      stage.execute(first);
      long firstMillis = millisSince(start);
      stage.cleanup(first);

      RecordingJobContext second = job(repository + ":2", local);
      start = System.nanoTime();
      stage.execute(second);
      long secondMillis = millisSince(start);
      stage.cleanup(second);
      System.out.println("[figure] push of a new image: " + firstMillis + " ms; the same image again (new tag): "
          + secondMillis + " ms\n  first log: " + first.lines() + "\n  second log: " + second.lines());

      List<String> reused = second.lines().stream().filter(l -> l.endsWith(": Layer already exists")).toList();
      assertEquals(2, reused.size(), "busybox's layer and the id layer: " + second.lines());
      assertFalse(second.lines().stream().anyMatch(l -> l.endsWith(": Pushed")), second.lines().toString());
      assertEquals(first.get(StageKeys.IMAGE_DIGEST), second.get(StageKeys.IMAGE_DIGEST), "same manifest, same digest");
    }
  }

  @Test
  void theTagDefaultsToLatestAndTheRegistryIsPrepended() throws Exception {
    String local = buildImage("latest");
    String repository = repositoryOf(local);
    try (Stage stage = stage(settings())) {
      RecordingJobContext job = job(repository, local);
      stage.execute(job);
      stage.cleanup(job);
      assertEquals(Optional.of(REGISTRY.address() + "/" + repository + ":latest"), job.get(StageKeys.IMAGE_URI));
      assertEquals(REGISTRY.manifestDigest(repository, "latest"), job.get(StageKeys.IMAGE_DIGEST));
    }
  }

  @Test
  void aWrongPasswordIsDeniedWithTheEnginesMessage() throws Exception {
    String local = buildImage("wrong");
    String wrong = "wrong-password-" + Fixtures.unique();
    try (Stage stage = stage(settings("auth", map("username", REGISTRY.user(), "password", wrong)))) {
      RecordingJobContext job = job(repositoryOf(local) + ":1", local);
      long start = System.nanoTime();
      StageException e = assertThrows(StageException.class, () -> stage.execute(job));
      System.out.println("[figure] wrong password: " + e.code() + " after " + millisSince(start) + " ms: " + e.getMessage());
      stage.cleanup(job);
      assertEquals("push.denied", e.code());
      assertTrue(e.getMessage().contains("unauthorized") || e.getMessage().contains("authentication required"),
          e.getMessage());
      assertTrue(e.getMessage().contains("user '" + REGISTRY.user() + "'"), e.getMessage());
      List<String> texts = new ArrayList<>(job.lines());
      texts.add(e.getMessage());
      for (String text : texts) {
        assertFalse(text.contains(wrong), "password in: " + text);
      }
      assertFalse(job.lines().stream().anyMatch(l -> l.contains("retrying")), "auth failures are not retried");
    }
  }

  @Test
  void noCredentialsForARegistryWithAuthIsDenied() throws Exception {
    String local = buildImage("anon");
    Map<String, Object> anonymous = settings();
    anonymous.remove("auth");
    try (Stage stage = stage(anonymous)) {
      RecordingJobContext job = job(repositoryOf(local) + ":1", local);
      StageException e = assertThrows(StageException.class, () -> stage.execute(job));
      System.out.println("[figure] no credentials: " + e.code() + ": " + e.getMessage());
      stage.cleanup(job);
      assertEquals("push.denied", e.code());
      assertTrue(e.getMessage().contains("without credentials"), e.getMessage());
    }
  }

  @Test
  void aRegistryThatIsDownFailsThePushInSeconds() throws Exception {
    String local = buildImage("down");
    int closed;
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      closed = socket.getLocalPort();
    }
    try (Stage stage = stage(settings("registry", "127.0.0.1:" + closed))) {
      RecordingJobContext job = job(repositoryOf(local) + ":1", local);
      long start = System.nanoTime();
      StageException e = assertThrows(StageException.class, () -> stage.execute(job));
      long millis = millisSince(start);
      System.out.println("[figure] registry down (closed port " + closed + "): " + e.code() + " after " + millis
          + " ms: " + e.getMessage());
      stage.cleanup(job);
      assertEquals("push.failed", e.code());
      assertTrue(e.getMessage().contains("connection refused"), e.getMessage());
      assertTrue(millis < 10_000, "gave up after " + millis + " ms");
      assertFalse(DOCKER.imageExists("127.0.0.1:" + closed + "/" + repositoryOf(local) + ":1"), "tag removed");
    }
  }

  @Test
  void aRegistryThatGoesDownDuringThePushFailsItWithinTheRetryBudget() throws Exception {
    String local = buildImage("midpush");
    RegistryProxy proxy = RegistryProxy.start(REGISTRY.address()).stallUploads();
    try (proxy; Stage stage = stage(settings("registry", proxy.address(), "retry", map("max-attempts", 2)))) {
      RecordingJobContext job = job(repositoryOf(local) + ":1", local);
      CompletableFuture<Throwable> outcome = new CompletableFuture<>();
      Thread thread = new Thread(() -> {
        try {
          stage.execute(job);
          outcome.complete(null);
        } catch (Throwable t) {
          outcome.complete(t);
        }
      }, "push-while-registry-dies");
      thread.setDaemon(true);
      thread.start();
      awaitUpload(proxy);
      long start = System.nanoTime();
      proxy.close(); // the registry goes away with uploads under way
      Throwable t = outcome.get(60, TimeUnit.SECONDS);
      long millis = millisSince(start);
      System.out.println("[figure] registry down during the push (max-attempts 2): " + t + " after " + millis + " ms");
      stage.cleanup(job);
      assertTrue(t instanceof StageException, String.valueOf(t));
      StageException e = (StageException) t;
      assertEquals("push.failed", e.code());
      assertTrue(e.getMessage().contains("connection refused"), e.getMessage());
      assertTrue(job.lines().stream().anyMatch(l -> l.contains(": Retrying in 5 seconds")), job.lines().toString());
      // The engine would have gone on for about 50 s (5 tries, 5 s to 20 s apart).
      assertTrue(millis < 15_000, "gave up after " + millis + " ms");
    }
  }

  private static void awaitUpload(RegistryProxy proxy) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (proxy.requests().stream().noneMatch(r -> r.contains("/blobs/uploads/")) && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertTrue(proxy.requests().stream().anyMatch(r -> r.contains("/blobs/uploads/")), proxy.requests().toString());
    Thread.sleep(200);
  }

  @Test
  void serverErrorsAreRetriedUntilTheRegistryTakesThePush() throws Exception {
    String local = buildImage("retry");
    String repository = repositoryOf(local);
    try (RegistryProxy proxy = RegistryProxy.start(REGISTRY.address()).failManifestPuts(2, 503);
        Stage stage = stage(settings("registry", proxy.address()))) {
      RecordingJobContext job = job(repository + ":1", local);
      long start = System.nanoTime();
      stage.execute(job);
      System.out.println("[figure] manifest PUT answered 503 twice, then taken: " + millisSince(start) + " ms");
      stage.cleanup(job);
      List<String> retries = job.lines().stream().filter(l -> l.contains("retrying in")).toList();
      assertEquals(2, retries.size(), job.lines().toString());
      assertTrue(retries.get(0).contains("received unexpected HTTP status: 503"), retries.get(0));
      assertEquals(3, proxy.manifestPuts(), "three attempts: " + proxy.requests());
      assertEquals(REGISTRY.manifestDigest(repository, "1"), job.get(StageKeys.IMAGE_DIGEST));
      assertTrue(job.lines().stream().anyMatch(l -> l.endsWith(": Layer already exists")),
          "later attempts find the layers the first one uploaded: " + job.lines());
    }
  }

  @Test
  void serverErrorsThatLastGiveUpAfterMaxAttempts() throws Exception {
    String local = buildImage("giveup");
    try (RegistryProxy proxy = RegistryProxy.start(REGISTRY.address()).failManifestPuts(100, 502);
        Stage stage = stage(settings("registry", proxy.address(), "retry", map("max-attempts", 3, "initial-backoff", "100ms")))) {
      RecordingJobContext job = job(repositoryOf(local) + ":1", local);
      long start = System.nanoTime();
      StageException e = assertThrows(StageException.class, () -> stage.execute(job));
      System.out.println("[figure] manifest PUT always 502: " + e.code() + " after " + millisSince(start) + " ms: "
          + e.getMessage());
      stage.cleanup(job);
      assertEquals("push.failed", e.code());
      assertTrue(e.getMessage().contains("after 3 attempts") && e.getMessage().contains("502"), e.getMessage());
      assertEquals(3, proxy.manifestPuts(), proxy.requests().toString());
    }
  }

  @Test
  void authenticationFailuresAreNotRetried() throws Exception {
    String local = buildImage("noretry");
    String wrong = "wrong-password-" + Fixtures.unique();
    List<List<String>> requests = new ArrayList<>();
    for (int attempts : new int[] {1, 3}) {
      try (RegistryProxy proxy = RegistryProxy.start(REGISTRY.address());
          Stage stage = stage(settings("registry", proxy.address(),
              "auth", map("username", REGISTRY.user(), "password", wrong),
              "retry", map("max-attempts", attempts, "initial-backoff", "1s")))) {
        RecordingJobContext job = job(repositoryOf(local) + ":1", local);
        long start = System.nanoTime();
        StageException e = assertThrows(StageException.class, () -> stage.execute(job));
        long millis = millisSince(start);
        System.out.println("[figure] wrong password through the proxy, max-attempts " + attempts + ": " + e.code()
            + " after " + millis + " ms; registry requests: " + proxy.requests());
        stage.cleanup(job);
        assertEquals("push.denied", e.code(), e.getMessage());
        assertFalse(job.lines().stream().anyMatch(l -> l.contains("retrying")), job.lines().toString());
        assertTrue(millis < 1000, "no backoff waited: " + millis + " ms");
        requests.add(proxy.requests());
      }
    }
    // Each push attempt of the engine starts with one ping (GET /v2/); how many layer requests
    // follow varies with the engine's concurrency.
    for (List<String> r : requests) {
      assertEquals(1, r.stream().filter("GET /v2/"::equals).count(), "one attempt: " + r);
    }
  }

  @Test
  void aDigestTheRegistryDoesNotServeIsCaught() throws Exception {
    String local = buildImage("mismatch");
    String forged = "sha256:" + "0".repeat(64);
    try (RegistryProxy proxy = RegistryProxy.start(REGISTRY.address()).overrideManifestDigest(forged);
        Stage stage = stage(settings("registry", proxy.address(), "digest-check", "registry"))) {
      RecordingJobContext job = job(repositoryOf(local) + ":1", local);
      StageException e = assertThrows(StageException.class, () -> stage.execute(job));
      stage.cleanup(job);
      assertEquals("push.digest-mismatch", e.code());
      assertTrue(e.getMessage().contains(forged), e.getMessage());
      assertEquals(Optional.empty(), job.get(StageKeys.IMAGE_DIGEST));
      assertTrue(proxy.requests().stream().anyMatch(r -> r.startsWith("HEAD ") && r.contains("/manifests/1")),
          proxy.requests().toString());
    }
  }

  @Test
  void byDefaultTheRegistrysAnswerToThePushIsTheDigestAndNoManifestIsAskedFor() throws Exception {
    String local = buildImage("answer");
    try (RegistryProxy proxy = RegistryProxy.start(REGISTRY.address());
        Stage stage = stage(settings("registry", proxy.address()))) {
      String repository = repositoryOf(local);
      RecordingJobContext job = job(repository + ":1", local);
      stage.execute(job);
      stage.cleanup(job);

      assertEquals(REGISTRY.manifestDigest(repository, "1"), job.get(StageKeys.IMAGE_DIGEST));
      assertTrue(proxy.requests().stream().anyMatch(r -> r.startsWith("PUT ") && r.contains("/manifests/1")),
          proxy.requests().toString());
      assertTrue(proxy.requests().stream().noneMatch(r -> r.startsWith("HEAD ") && r.contains("/manifests/")),
          "no manifest request after the push: " + proxy.requests());
    }
  }

  @Test
  void cancellationStopsAPushWithinASecondOrTwo() throws Exception {
    String local = buildImage("cancel");
    try (RegistryProxy proxy = RegistryProxy.start(REGISTRY.address()).stallUploads();
        Stage stage = stage(settings("registry", proxy.address()))) {
      RecordingJobContext job = job(repositoryOf(local) + ":1", local);
      CompletableFuture<Throwable> outcome = new CompletableFuture<>();
      Thread thread = new Thread(() -> {
        try {
          stage.execute(job);
          outcome.complete(null);
        } catch (Throwable t) {
          outcome.complete(t);
        }
      }, "push-to-cancel");
      thread.setDaemon(true);
      thread.start();
      awaitUpload(proxy);
      long start = System.nanoTime();
      job.cancel();
      Throwable t = outcome.get(10, TimeUnit.SECONDS);
      long millis = millisSince(start);
      System.out.println("[figure] cancel during an upload: stage returned after " + millis + " ms (" + t + ")");
      stage.cleanup(job);
      assertTrue(t instanceof InterruptedException, String.valueOf(t));
      assertTrue(millis < 2000, "stopped " + millis + " ms after the cancel");
    }
  }

  @Test
  void theSettingsKeepThePasswordToThemselves() throws Exception {
    DockerPushSettings s = DockerPushSettings.from(Fixtures.config(settings()), Fixtures.worker(Map.of()));
    assertFalse(s.toString().contains(REGISTRY.password()), s.toString());
    assertTrue(new String(s.toString().getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8).contains("****"));
  }
}

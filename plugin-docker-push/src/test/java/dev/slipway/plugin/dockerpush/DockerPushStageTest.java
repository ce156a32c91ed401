package dev.slipway.plugin.dockerpush;

import static dev.slipway.plugin.dockerpush.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The stage's decisions, against a fake engine and a fake registry. */
class DockerPushStageTest {
  static final String DIGEST = "sha256:" + "a".repeat(64);
  static final String OTHER_DIGEST = "sha256:" + "b".repeat(64);
  static final String PASSWORD = "static-Pa55word-that-must-not-leak";
  static final String ECR_TOKEN = "ecr-token-that-must-not-leak-0123456789";

  @TempDir Path workspace;

  final FakeEngine engine = new FakeEngine().image("team/app:1", "sha256:local");
  final AtomicInteger confirmations = new AtomicInteger();
  final List<String> pings = new CopyOnWriteArrayList<>();

  /** The fake registry's manifest answer. */
  interface Digests {
    Optional<String> get(ImageName.Target target, Optional<RegistryCredentials> credentials)
        throws RegistryApi.RegistryException;
  }

  Digests registry =
      (target, credentials) -> {
        confirmations.incrementAndGet();
        return Optional.of(DIGEST);
      };
  /** What the fake registry's ping throws, if anything. */
  volatile RegistryApi.RegistryException pingFailure;

  private DockerPushStage stage(Map<String, ?> overrides) throws Exception {
    RegistryClient client = new RegistryClient() {
      @Override
      public Optional<String> manifestDigest(ImageName.Target t, Optional<RegistryCredentials> c)
          throws RegistryApi.RegistryException {
        return registry.get(t, c);
      }

      @Override
      public void ping(ImageName.Target t, Optional<RegistryCredentials> c) throws RegistryApi.RegistryException {
        pings.add(t.registry());
        if (pingFailure != null) {
          throw pingFailure;
        }
      }
    };
    // These tests are about the registry's confirmation: digest-check = registry unless a test
    // says otherwise.
    Map<String, Object> settings = new java.util.LinkedHashMap<>(overrides);
    settings.putIfAbsent("digest-check", "registry");
    return new DockerPushStage(Fixtures.settings(settings), engine, client, System::nanoTime, locks);
  }

  /** The locks of this test's stages only, so that no other test's job can hold a name. */
  final LocalNameLocks locks = new LocalNameLocks();

  private RecordingJobContext job(String imageName) {
    return Fixtures.job(imageName, "team/app:1", workspace);
  }

  @Test
  void prependsTheConfiguredRegistryAndDefaultsTheTagToLatest() throws Exception {
    RecordingJobContext job = job("team/app");
    stage(map("registry", "registry.example.com")).execute(job);

    assertEquals(Optional.of("registry.example.com/team/app:latest"), job.get(StageKeys.IMAGE_URI));
    assertEquals(Optional.of(DIGEST), job.get(StageKeys.IMAGE_DIGEST));
    assertTrue(engine.calls.contains("tag team/app:1 registry.example.com/team/app:latest"), engine.calls.toString());
    assertEquals(List.of(Optional.empty()), engine.pushCredentials, "no credentials anywhere: anonymous push");
    assertEquals(1, confirmations.get());
  }

  @Test
  void withDigestCheckPushTheRegistrysAnswerToThePushIsTakenWithoutAskingAgain() throws Exception {
    RecordingJobContext job = Fixtures.job(Fixtures.request("team/app:1", List.of("main")),
        "team/app:1", workspace);
    stage(map("registry", "registry.example.com", "digest-check", "push")).execute(job);

    assertEquals(Optional.of(DIGEST), job.get(StageKeys.IMAGE_DIGEST));
    assertEquals(0, confirmations.get(), "no manifest request for a digest the push answered");
  }

  @Test
  void withDigestCheckPushAPushThatReportedNoDigestIsStillConfirmed() throws Exception {
    // An engine that says nothing of the digest (neither the status line nor the aux message).
    engine.script = n -> FakeEngine.success(DIGEST).stream()
        .filter(m -> m.digest().isEmpty() && !m.status().contains("digest:")).toList();
    RecordingJobContext job = job("team/app:1");
    stage(map("registry", "registry.example.com", "digest-check", "push")).execute(job);

    assertEquals(Optional.of(DIGEST), job.get(StageKeys.IMAGE_DIGEST));
    assertEquals(1, confirmations.get());
  }

  @Test
  void keepsTheTagAndTheRegistryThatImageNameGives() throws Exception {
    RecordingJobContext job = job("localhost:5000/team/app:2.1");
    stage(map()).execute(job);
    assertEquals(Optional.of("localhost:5000/team/app:2.1"), job.get(StageKeys.IMAGE_URI));
  }

  @Test
  void publishedCredentialsNameTheRegistry() throws Exception {
    RecordingJobContext job = job("team/app:1");
    job.publish(StageKeys.REGISTRY_CREDENTIALS,
        new RegistryCredentials("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "AWS", Secret.of(ECR_TOKEN)));
    stage(map()).execute(job);

    assertEquals(Optional.of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1"), job.get(StageKeys.IMAGE_URI));
    RegistryCredentials used = engine.pushCredentials.get(0).orElseThrow();
    assertEquals("AWS", used.username());
    assertEquals(ECR_TOKEN, used.password().reveal());
  }

  @Test
  void publishedCredentialsWinOverStaticOnesForTheSameRegistry() throws Exception {
    RecordingJobContext job = job("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1");
    job.publish(StageKeys.REGISTRY_CREDENTIALS,
        new RegistryCredentials("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "AWS", Secret.of(ECR_TOKEN)));
    stage(map("registry", "123456789012.DKR.ecr.eu-west-1.amazonaws.com",
        "auth", map("username", "ci", "password", PASSWORD))).execute(job);

    assertEquals(Optional.of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1"), job.get(StageKeys.IMAGE_URI));
    assertEquals("AWS", engine.pushCredentials.get(0).orElseThrow().username());
  }

  @Test
  void anAuthStageRegistryOtherThanTheConfiguredOneIsRefusedBeforeTagging() throws Exception {
    // The job was admitted for registry.example.com (its push target); the auth stage's registry
    // is somewhere else: pushed to neither.
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = job("team/app:1");
    assertEquals(List.of(new PushTarget(Optional.of("registry.example.com"), "team/app")),
        stage.pushTargets(job.request()));
    job.publish(StageKeys.REGISTRY_CREDENTIALS,
        new RegistryCredentials("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "AWS", Secret.of(ECR_TOKEN)));
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));
    assertEquals("push.registry-not-allowed", e.code());
    assertEquals(ErrorKind.CONFIGURATION, e.kind(), "the worker's configuration, not the request, is at fault");
    assertTrue(e.getMessage().contains("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
        && e.getMessage().contains("worker.stages.docker-push.registry is registry.example.com")
        && e.getMessage().contains("Set worker.stages.docker-push.registry to 123456789012"), e.getMessage());
    assertFalse(e.getMessage().contains(ECR_TOKEN), e.getMessage());
    assertFalse(engine.calls.stream().anyMatch(c -> c.startsWith("tag ") || c.startsWith("push ")), engine.calls.toString());
  }

  @Test
  void staticCredentialsServeRegistriesWithoutAnAuthStage() throws Exception {
    RecordingJobContext job = job("team/app:1");
    stage(map("registry", "registry.example.com", "auth", map("username", "ci", "password", PASSWORD))).execute(job);
    RegistryCredentials used = engine.pushCredentials.get(0).orElseThrow();
    assertEquals("registry.example.com", used.registry());
    assertEquals("ci", used.username());
    assertTrue(job.secrets().contains(PASSWORD), "the static password is masked in the job's log");
  }

  @Test
  void refusesAnImageNameThatNamesAnotherRegistryThanTheConfiguredOne() throws Exception {
    DockerPushStage stage =
        stage(map("registry", "registry.example.com", "auth", map("username", "ci", "password", PASSWORD)));
    StageException e = assertThrows(StageException.class, () -> stage.execute(job("evil.example.net/team/app:1")));
    assertEquals("push.registry-not-allowed", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertEquals("image_name 'evil.example.net/team/app:1' names registry evil.example.net, but this worker pushes"
        + " only to registry.example.com (worker.stages.docker-push.registry); give image_name without a registry"
        + " host, e.g. 'team/app:1', or with that one, e.g. 'registry.example.com/team/app:1'", e.getMessage());
    assertFalse(engine.calls.stream().anyMatch(c -> c.startsWith("tag ") || c.startsWith("push ")),
        "nothing tagged, nothing pushed, no credentials sent: " + engine.calls);
  }

  @Test
  void validateRefusesAnotherRegistryThanTheConfiguredOneBeforeTheJobStarts() throws Exception {
    DockerPushStage stage = stage(map("registry", "Registry.Example.com:5000"));
    for (String other : List.of("evil.example.net/team/app:1", "registry.example.com/team/app:1",
        "registry.example.com:5001/team/app", "localhost:5000/team/app", "docker.io/team/app")) {
      StageException e = assertThrows(StageException.class, () -> stage.validate(Fixtures.request(other)), other);
      assertEquals("push.registry-not-allowed", e.code(), other);
      assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
      assertTrue(e.getMessage().contains("only to registry.example.com:5000"), e.getMessage());
      assertThrows(StageException.class, () -> stage.pushTargets(Fixtures.request(other)), other);
    }
    stage.validate(Fixtures.request("registry.example.com:5000/team/app:1"));
    stage.validate(Fixtures.request("REGISTRY.example.com:5000/team/app:1"));
    stage.validate(Fixtures.request("team/app:1"));
    assertTrue(engine.calls.isEmpty(), "validate asks the engine nothing: " + engine.calls);
  }

  @Test
  void refusesAnImageNameThatNamesAnotherRegistryThanTheAuthStages() throws Exception {
    DockerPushStage stage = stage(map());
    RecordingJobContext job = job("evil.example.net/team/app:1");
    stage.validate(job.request()); // no registry is known before the auth stage runs
    job.publish(StageKeys.REGISTRY_CREDENTIALS,
        new RegistryCredentials("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "AWS", Secret.of(ECR_TOKEN)));
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));
    assertEquals("push.registry-not-allowed", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().contains("names registry evil.example.net")
        && e.getMessage().contains("only to 123456789012.dkr.ecr.eu-west-1.amazonaws.com (published by the auth stage)")
        && e.getMessage().contains("e.g. 'team/app:1'"), e.getMessage());
    assertFalse(e.getMessage().contains(ECR_TOKEN), e.getMessage());
    assertFalse(engine.calls.stream().anyMatch(c -> c.startsWith("tag ") || c.startsWith("push ")), engine.calls.toString());

    // The auth stage's own registry, written another way, is the same registry.
    RecordingJobContext same = job("123456789012.DKR.ECR.eu-west-1.amazonaws.com/team/app:1");
    same.publish(StageKeys.REGISTRY_CREDENTIALS,
        new RegistryCredentials("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "AWS", Secret.of(ECR_TOKEN)));
    stage.execute(same);
    assertEquals(Optional.of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1"), same.get(StageKeys.IMAGE_URI));
  }

  @Test
  void pushTargetsNameImageNamesRegistryElseTheConfiguredOneElseNone() throws Exception {
    DockerPushStage configured = stage(map("registry", "Registry.Example.com:5000"));
    assertEquals(List.of(new PushTarget(Optional.of("registry.example.com:5000"), "team/app")),
        configured.pushTargets(Fixtures.request("team/app:1")), "the configured registry, canonical, no tag");
    assertEquals(List.of(new PushTarget(Optional.of("registry.example.com:5000"), "team/sub/app")),
        configured.pushTargets(Fixtures.request("REGISTRY.EXAMPLE.COM:5000/team/sub/app")));

    DockerPushStage open = stage(map());
    assertEquals(List.of(new PushTarget(Optional.of("localhost:5000"), "team/app")),
        open.pushTargets(Fixtures.request("localhost:5000/team/app:2.1")));
    assertEquals(List.of(new PushTarget(Optional.of("docker.io"), "team/app")),
        open.pushTargets(Fixtures.request("index.docker.io/team/app")), "Docker Hub's aliases fold into docker.io");
    assertEquals(List.of(new PushTarget(Optional.empty(), "team/app")),
        open.pushTargets(Fixtures.request("team/app:1")), "an auth stage will supply the registry");

    StageException e = assertThrows(StageException.class, () -> open.pushTargets(Fixtures.request("Team/App:1")));
    assertEquals("push.invalid-request", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
  }

  @Test
  void saysWhereARegistryCouldComeFromWhenThereIsNone() throws Exception {
    StageException e = assertThrows(StageException.class, () -> stage(map()).execute(job("team/app:1")));
    assertEquals("push.no-registry", e.code());
    assertTrue(e.getMessage().contains("worker.stages.docker-push.registry"), e.getMessage());
  }

  @Test
  void validateRefusesBadImageNamesBeforeTheJobStarts() throws Exception {
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    for (String bad : List.of("Team/App:1", "team/app@sha256:" + "c".repeat(64), "team/app:-x", "", "team//app")) {
      StageException e = assertThrows(StageException.class, () -> stage.validate(Fixtures.request(bad)), bad);
      assertEquals("push.invalid-request", e.code());
      assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    }
    stage.validate(Fixtures.request("team/app:1"));
  }

  @Test
  void aDenialInTheStreamFailsWithTheEnginesMessageAndIsNotRetried() throws Exception {
    engine.script = attempt -> FakeEngine.failure("unauthorized: authentication required");
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com", "retry", map("initial-backoff", "10ms"))).execute(job("team/app:1")));
    assertEquals("push.denied", e.code());
    assertEquals(ErrorKind.EXTERNAL, e.kind());
    assertTrue(e.getMessage().endsWith(": unauthorized: authentication required"), e.getMessage());
    assertEquals(1, engine.pushes());
  }

  @Test
  void otherStreamErrorsFailWithTheEnginesMessage() throws Exception {
    engine.script = attempt -> FakeEngine.failure("manifest invalid: manifest invalid");
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com")).execute(job("team/app:1")));
    assertEquals("push.failed", e.code());
    assertTrue(e.getMessage().contains("manifest invalid: manifest invalid"), e.getMessage());
    assertEquals(1, engine.pushes(), "not a transient failure: no retry");
  }

  @Test
  void transientFailuresAreRetriedWithBackoffUntilTheyPass() throws Exception {
    engine.script = attempt -> attempt < 3
        ? FakeEngine.failure("received unexpected HTTP status: 503 Service Unavailable")
        : FakeEngine.success(DIGEST);
    RecordingJobContext job = job("team/app:1");
    long start = System.nanoTime();
    stage(map("registry", "registry.example.com", "retry", map("initial-backoff", "100ms", "max-backoff", "150ms")))
        .execute(job);
    long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);

    assertEquals(3, engine.pushes());
    assertEquals(Optional.of(DIGEST), job.get(StageKeys.IMAGE_DIGEST));
    assertTrue(millis >= 250, "waited 100ms then 150ms (capped), took " + millis + "ms");
    List<String> retries = job.lines().stream().filter(l -> l.contains("retrying in")).toList();
    assertEquals(2, retries.size(), job.lines().toString());
    assertTrue(retries.get(0).startsWith("attempt 1 of 3:") && retries.get(0).contains("503"), retries.get(0));
  }

  @Test
  void transientFailuresGiveUpAfterMaxAttempts() throws Exception {
    engine.script = attempt -> FakeEngine.failure("Patch \"http://r/v2/x/blobs/uploads/1\": read: connection reset by peer");
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com", "retry", map("max-attempts", 4, "initial-backoff", "5ms")))
            .execute(job("team/app:1")));
    assertEquals("push.failed", e.code());
    assertTrue(e.getMessage().contains("after 4 attempts") && e.getMessage().contains("connection reset by peer"), e.getMessage());
    assertEquals(4, engine.pushes());
  }

  @Test
  void aFailureTheEngineAlreadyRetriedIsNotRetriedAgain() throws Exception {
    engine.script = attempt -> List.of(
        PushMessage.status("b88e8e63d0f5", "Preparing"),
        PushMessage.status("b88e8e63d0f5", "Retrying in 5 seconds"),
        PushMessage.status("b88e8e63d0f5", "Retrying in 1 second"),
        PushMessage.status("b88e8e63d0f5", "Retrying in 10 seconds"),
        PushMessage.error("received unexpected HTTP status: 503 Service Unavailable", null));
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com", "retry", map("initial-backoff", "5ms"))).execute(job("team/app:1")));
    assertEquals("push.failed", e.code());
    assertTrue(e.getMessage().contains("the engine had retried layer uploads 2 times itself")
        && e.getMessage().endsWith("received unexpected HTTP status: 503 Service Unavailable"), e.getMessage());
    assertEquals(1, engine.pushes());
  }

  @Test
  void theEnginesOwnRetriesAreBoundedByMaxAttemptsAndTheRegistryNamesTheCause() throws Exception {
    // The engine would go on: a third countdown for one layer means a fourth attempt.
    engine.script = attempt -> List.of(
        PushMessage.status("b88e8e63d0f5", "Retrying in 5 seconds"),
        PushMessage.status("b88e8e63d0f5", "Retrying in 10 seconds"),
        PushMessage.status("b88e8e63d0f5", "Retrying in 15 seconds"),
        PushMessage.status("b88e8e63d0f5", "Retrying in 20 seconds"),
        PushMessage.error("never reached", null));
    engine.hang = false;
    pingFailure = new RegistryApi.RegistryException(PushFailures.Kind.TRANSIENT,
        "GET http://127.0.0.1:1/v2/ failed: java.net.ConnectException");
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com")).execute(job("team/app:1")));
    assertEquals("push.failed", e.code());
    assertTrue(e.getMessage().contains("tried to upload layer b88e8e63d0f5") && e.getMessage().contains(" 3 times")
        && e.getMessage().endsWith("GET http://127.0.0.1:1/v2/ failed: java.net.ConnectException"), e.getMessage());
    assertEquals(List.of("registry.example.com"), pings);
    assertEquals(1, engine.pushes(), "not retried by the stage on top");

    pingFailure = new RegistryApi.RegistryException(PushFailures.Kind.DENIED, "GET http://r/v2/ answered HTTP 401");
    StageException denied = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com", "retry", map("max-attempts", 1))).execute(job("team/app:1")));
    assertEquals("push.denied", denied.code());
    assertTrue(denied.getMessage().contains("registry.example.com/team/app:1 once"), denied.getMessage());
  }

  @Test
  void aDigestTheRegistryDoesNotServeFailsThePush() throws Exception {
    registry = (t, c) -> Optional.of(OTHER_DIGEST);
    RecordingJobContext job = job("team/app:1");
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com")).execute(job));
    assertEquals("push.digest-mismatch", e.code());
    assertTrue(e.getMessage().contains(DIGEST) && e.getMessage().contains(OTHER_DIGEST), e.getMessage());
    assertEquals(Optional.empty(), job.get(StageKeys.IMAGE_DIGEST), "nothing published");
  }

  @Test
  void withoutADigestInTheStreamTheRegistrysIsTaken() throws Exception {
    engine.script = attempt -> List.of(PushMessage.status("b88e8e63d0f5", "Pushed"));
    RecordingJobContext job = job("team/app:1");
    stage(map("registry", "registry.example.com")).execute(job);
    assertEquals(Optional.of(DIGEST), job.get(StageKeys.IMAGE_DIGEST));
  }

  @Test
  void aRegistryWithoutTheManifestAfterThePushFailsIt() throws Exception {
    registry = (t, c) -> Optional.empty();
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com")).execute(job("team/app:1")));
    assertEquals("push.failed", e.code());
    assertTrue(e.getMessage().contains("no manifest"), e.getMessage());
  }

  @Test
  void theDigestCheckRetriesTransientFailuresButNotDenials() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    registry = (t, c) -> {
      if (calls.incrementAndGet() == 1) {
        throw new RegistryApi.RegistryException(PushFailures.Kind.TRANSIENT, "HEAD answered HTTP 502");
      }
      return Optional.of(DIGEST);
    };
    stage(map("registry", "registry.example.com", "retry", map("initial-backoff", "5ms"))).execute(job("team/app:1"));
    assertEquals(2, calls.get());

    calls.set(0);
    registry = (t, c) -> {
      calls.incrementAndGet();
      throw new RegistryApi.RegistryException(PushFailures.Kind.DENIED, "HEAD answered HTTP 401");
    };
    StageException e = assertThrows(StageException.class,
        () -> stage(map("registry", "registry.example.com", "retry", map("initial-backoff", "5ms"))).execute(job("team/app:1")));
    assertEquals("push.denied", e.code());
    assertEquals(1, calls.get());
  }

  @Test
  void aMissingLocalImageIsReportedAsSuch() throws Exception {
    RecordingJobContext job = Fixtures.job("team/app:1", "gone/app:1", workspace);
    StageException e = assertThrows(StageException.class, () -> stage(map("registry", "registry.example.com")).execute(job));
    assertEquals("push.image-not-found", e.code());
  }

  @Test
  void cancellationAbortsARunningPushAtOnce() throws Exception {
    engine.hang = true;
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = job("team/app:1");
    CompletableFuture<Throwable> outcome = runAsync(stage, job);
    Thread.sleep(300);
    long start = System.nanoTime();
    job.cancel();
    Throwable t = outcome.get(5, TimeUnit.SECONDS);
    long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertTrue(t instanceof InterruptedException, String.valueOf(t));
    assertTrue(millis < 1000, "stopped " + millis + "ms after the cancel");
  }

  @Test
  void cancellationEndsABackoffWait() throws Exception {
    engine.script = attempt -> FakeEngine.failure("received unexpected HTTP status: 502 Bad Gateway");
    DockerPushStage stage = stage(map("registry", "registry.example.com",
        "retry", map("initial-backoff", "30s", "max-backoff", "30s")));
    RecordingJobContext job = job("team/app:1");
    CompletableFuture<Throwable> outcome = runAsync(stage, job);
    Thread.sleep(300);
    job.cancel();
    Throwable t = outcome.get(2, TimeUnit.SECONDS);
    assertTrue(t instanceof InterruptedException, String.valueOf(t));
    assertEquals(1, engine.pushes());
  }

  static final String PRIVATE = "slipway.local/job-1-0a1b2c3d:build";
  static final String DEST = "registry.example.com/team/app:1";

  /** A job whose build stage published a private name, as the buildkit stage does. */
  private RecordingJobContext privateJob(String privateName, String id) {
    engine.image(privateName, id);
    return Fixtures.job("team/app:1", privateName, workspace);
  }

  /** The engine's names and ids, without the fixture's own {@code team/app:1}. */
  private Map<String, String> names() {
    Map<String, String> names = new java.util.HashMap<>(engine.names());
    names.remove("team/app:1");
    return names;
  }

  private List<String> heldNames() {
    return names().keySet().stream().filter(n -> n.startsWith("slipway.local/held-")).toList();
  }

  @Test
  void theDestinationNameExistsOnlyWhileThePushRuns() throws Exception {
    List<Optional<String>> duringPush = new CopyOnWriteArrayList<>();
    engine.script = attempt -> {
      duringPush.add(Optional.ofNullable(names().get(DEST)));
      return FakeEngine.success(DIGEST);
    };
    List<Optional<String>> duringConfirm = new CopyOnWriteArrayList<>();
    registry = (target, credentials) -> {
      duringConfirm.add(Optional.ofNullable(names().get(DEST)));
      return Optional.of(DIGEST);
    };
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(PRIVATE, "sha256:mine");
    stage.execute(job);

    assertEquals(List.of(Optional.of("sha256:mine")), duringPush, "pushed from the job's own image");
    assertEquals(List.of(Optional.empty()), duringConfirm, "removed right after the push, before the digest check");
    assertFalse(names().containsKey(DEST), "nothing left under the destination name: " + names());
    assertTrue(job.lines().contains("removed local tag " + DEST), job.lines().toString());
    assertTrue(names().containsKey(PRIVATE), "the build's name stays until cleanup");
    assertEquals(0, locks.size(), "the name's lock is released");

    stage.cleanup(job);
    assertEquals(Map.of(), names(), "no name of the job is left: " + names());
    assertTrue(job.lines().contains("removed the build's private name " + PRIVATE), job.lines().toString());
  }

  @Test
  void anImageThatHadTheNameGetsItBackWhateverThePushsOutcome() throws Exception {
    for (String outcome : List.of("success", "failure", "denied", "cancelled")) {
      engine.image(DEST, "sha256:theirs");
      engine.hang = outcome.equals("cancelled");
      Map<String, String> duringPush = new java.util.concurrent.ConcurrentHashMap<>();
      engine.script = attempt -> {
        duringPush.putAll(names());
        return switch (outcome) {
          case "failure" -> FakeEngine.failure("manifest invalid: manifest invalid");
          case "denied" -> FakeEngine.failure("denied: requested access to the resource is denied");
          default -> FakeEngine.success(DIGEST);
        };
      };
      DockerPushStage stage = stage(map("registry", "registry.example.com"));
      RecordingJobContext job = privateJob(PRIVATE, "sha256:mine");
      if (outcome.equals("cancelled")) {
        CompletableFuture<Throwable> result = runAsync(stage, job);
        Thread.sleep(200);
        job.cancel();
        assertTrue(result.get(5, TimeUnit.SECONDS) instanceof InterruptedException, outcome);
      } else if (outcome.equals("success")) {
        stage.execute(job);
      } else {
        assertThrows(StageException.class, () -> stage.execute(job));
      }
      assertEquals("sha256:theirs", names().get(DEST), outcome + ": " + engine.calls);
      assertEquals(List.of(), heldNames(), outcome + ": the holding name is gone");
      if (!outcome.equals("cancelled")) {
        assertEquals("sha256:mine", duringPush.get(DEST), outcome + ": the push went out from the job's image");
        assertTrue(duringPush.keySet().stream().anyMatch(n -> n.startsWith("slipway.local/held-")
            && duringPush.get(n).equals("sha256:theirs")), outcome + ": the other image had a name meanwhile "
            + duringPush);
      }
      assertTrue(job.lines().stream().anyMatch(l -> l.contains("already has another image under " + DEST)),
          job.lines().toString());
      stage.cleanup(job);
      assertEquals(Map.of(DEST, "sha256:theirs"), names(), outcome);
      assertEquals(0, locks.size(), outcome);
      engine.hang = false;
    }
  }

  @Test
  void aTagThatFailsHalfWayIsPutBackToo() throws Exception {
    // The engine takes the first tag (the other image under its holding name) and refuses the
    // second (the job's image under the destination name).
    engine.image(DEST, "sha256:theirs");
    RecordingJobContext job = privateJob(PRIVATE, "sha256:mine");
    DockerPushStage stage = new DockerPushStage(Fixtures.settings(map("registry", "registry.example.com")),
        new FakeEngineFailingSecondTag(engine), (RegistryClient) null, System::nanoTime, locks);
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));
    assertEquals("push.failed", e.code());
    assertTrue(e.getMessage().contains("no space left on device"), e.getMessage());
    assertEquals("sha256:theirs", names().get(DEST));
    assertEquals(List.of(), heldNames());
    assertEquals(0, engine.pushes());
    stage.cleanup(job);
    assertEquals(Map.of(DEST, "sha256:theirs"), names());
    assertEquals(0, locks.size());
  }

  /** The fake engine, except that tagging the job's own image fails. */
  private static final class FakeEngineFailingSecondTag implements ImageEngine {
    private final FakeEngine engine;

    FakeEngineFailingSecondTag(FakeEngine engine) {
      this.engine = engine;
    }

    @Override
    public Optional<String> imageId(String reference) {
      return engine.imageId(reference);
    }

    @Override
    public void tag(String source, ImageName.Target target) throws EngineException {
      if (source.startsWith("slipway.local/job-")) {
        throw new EngineException(EngineException.Reason.FAILED, "no space left on device", null);
      }
      engine.tag(source, target);
    }

    @Override
    public RunningPush push(ImageName.Target target, Optional<RegistryCredentials> credentials,
        java.util.function.Consumer<PushMessage> listener) throws EngineException {
      return engine.push(target, credentials, listener);
    }

    @Override
    public void removeTag(String reference) throws EngineException {
      engine.removeTag(reference);
    }

    @Override
    public void close() {}
  }

  @Test
  void theNameAlreadyOnTheJobsImageIsLeftAsItIs() throws Exception {
    engine.image(DEST, "sha256:mine");
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(PRIVATE, "sha256:mine");
    stage.execute(job);
    stage.cleanup(job);
    assertEquals(Map.of(DEST, "sha256:mine"), names());
    assertFalse(engine.calls.stream().anyMatch(c -> c.startsWith("tag ")), engine.calls.toString());
  }

  @Test
  void cleanupRemovesOnlyAPrivateBuildNameNeverAnotherPublishedOne() throws Exception {
    engine.script = attempt -> FakeEngine.failure("manifest invalid: manifest invalid");
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext failed = privateJob(PRIVATE, "sha256:mine");
    assertThrows(StageException.class, () -> stage.execute(failed));
    stage.cleanup(failed);
    assertFalse(names().containsKey(PRIVATE), "removed after a failed push too");

    // A build stage of another kind that published the caller's own name: not this stage's to remove.
    RecordingJobContext legacy = job("team/app:1");
    assertThrows(StageException.class, () -> stage.execute(legacy));
    stage.cleanup(legacy);
    assertEquals("sha256:local", engine.names().get("team/app:1"));
    assertFalse(engine.calls.contains("rmi team/app:1"), engine.calls.toString());

    stage.cleanup(failed);
    stage.cleanup(job("team/never:1")); // a job whose push stage never ran: nothing to do, no error
  }

  @Test
  void twoJobsPushingTheSameNameAtOnceTakeTurnsAndEachConfirmsItsOwnDigest() throws Exception {
    engine.image("slipway.local/a-00000001:build", "sha256:" + "a".repeat(64));
    engine.image("slipway.local/b-00000002:build", "sha256:" + "b".repeat(64));
    java.util.concurrent.CountDownLatch firstPushing = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch letFirstGo = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.atomic.AtomicReference<String> lastPushed = new java.util.concurrent.atomic.AtomicReference<>();
    engine.script = attempt -> {
      String id = names().get(DEST);
      lastPushed.set(id);
      if (attempt == 1) {
        firstPushing.countDown();
        try {
          letFirstGo.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      // The digest follows the image: what a registry would serve for it.
      return FakeEngine.success(id);
    };
    registry = (target, credentials) -> Optional.ofNullable(lastPushed.get());
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext first = Fixtures.job("team/app:1", "slipway.local/a-00000001:build", workspace);
    RecordingJobContext second = Fixtures.job("team/app:1", "slipway.local/b-00000002:build", workspace);

    CompletableFuture<Throwable> a = runAsync(stage, first);
    assertTrue(firstPushing.await(5, TimeUnit.SECONDS));
    CompletableFuture<Throwable> b = runAsync(stage, second);
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (second.lines().stream().noneMatch(l -> l.startsWith("waiting for another job")) && System.nanoTime() < end) {
      Thread.sleep(10);
    }
    assertTrue(second.lines().stream().anyMatch(l -> l.startsWith("waiting for another job of this worker to finish"
        + " its push of " + DEST)), second.lines().toString());
    assertEquals(1, engine.pushes(), "the second job waits, it does not retag the name under the first's push");
    letFirstGo.countDown();
    assertEquals(null, a.get(5, TimeUnit.SECONDS));
    assertEquals(null, b.get(5, TimeUnit.SECONDS));

    assertEquals(Optional.of("sha256:" + "a".repeat(64)), first.get(StageKeys.IMAGE_DIGEST));
    assertEquals(Optional.of("sha256:" + "b".repeat(64)), second.get(StageKeys.IMAGE_DIGEST));
    stage.cleanup(first);
    stage.cleanup(second);
    assertEquals(Map.of(), names());
    assertEquals(0, locks.size());
  }

  @Test
  void aNameThatCouldNotBePutBackStaysLockedUntilCleanupPutsItBack() throws Exception {
    engine.image(DEST, "sha256:theirs");
    engine.failRemove = new EngineException(EngineException.Reason.UNREACHABLE, "the engine went away", null);
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext first = privateJob(PRIVATE, "sha256:mine");
    stage.execute(first);
    assertTrue(first.lines().stream().anyMatch(l -> l.startsWith("could not give " + DEST + " back")
        && l.contains("kept as slipway.local/held-")), first.lines().toString());

    RecordingJobContext second = privateJob("slipway.local/job-2-0a1b2c3e:build", "sha256:second");
    CompletableFuture<Throwable> waiting = runAsync(stage, second);
    Thread.sleep(300);
    assertFalse(waiting.isDone(), "the next job would take the first job's image for the name's owner");
    assertEquals(1, engine.pushes());

    engine.failRemove = null;
    stage.cleanup(first);
    assertEquals(null, waiting.get(5, TimeUnit.SECONDS));
    stage.cleanup(second);
    assertEquals(Map.of(DEST, "sha256:theirs"), names(), engine.calls.toString());
    assertEquals(0, locks.size());
  }

  @Test
  void cleanupNeverThrowsAndAlwaysReleasesTheName() throws Exception {
    engine.failRemove = new EngineException(EngineException.Reason.FAILED, "conflict: image is being used", null);
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(PRIVATE, "sha256:mine");
    stage.execute(job);
    stage.cleanup(job);
    assertTrue(job.lines().stream().anyMatch(l -> l.contains("could not remove local tag") && l.contains("conflict")),
        job.lines().toString());
    assertTrue(job.lines().stream().anyMatch(l -> l.contains("could not remove the build's private name")),
        job.lines().toString());
    assertEquals(0, locks.size(), "a job that is over holds no name, even one it could not put back");
  }

  @Test
  void theDeprecatedRemoveLocalTagsSettingStillKeepsNothing() throws Exception {
    DockerPushStage stage = stage(map("registry", "registry.example.com", "remove-local-tags", false));
    RecordingJobContext job = privateJob(PRIVATE, "sha256:mine");
    stage.execute(job);
    stage.cleanup(job);
    assertEquals(Map.of(), names());
  }

  @Test
  void aCancelWhileWaitingForTheNameEndsTheWait() throws Exception {
    engine.hang = true;
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext first = privateJob(PRIVATE, "sha256:mine");
    CompletableFuture<Throwable> pushing = runAsync(stage, first);
    Thread.sleep(200);
    RecordingJobContext second = privateJob("slipway.local/job-2-0a1b2c3e:build", "sha256:second");
    CompletableFuture<Throwable> waiting = runAsync(stage, second);
    Thread.sleep(200);
    second.cancel();
    assertTrue(waiting.get(2, TimeUnit.SECONDS) instanceof InterruptedException);
    first.cancel();
    assertTrue(pushing.get(2, TimeUnit.SECONDS) instanceof InterruptedException);
    stage.cleanup(second);
    stage.cleanup(first);
    assertEquals(Map.of(), names());
    assertEquals(0, locks.size());
  }

  @Test
  void noSecretInLogsMessagesOrToString() throws Exception {
    engine.script = attempt -> FakeEngine.failure("unauthorized: authentication required");
    DockerPushStage stage = stage(map("registry", "registry.example.com", "auth", map("username", "ci", "password", PASSWORD)));
    RecordingJobContext job = job("team/app:1");
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));

    List<String> texts = new ArrayList<>(job.lines());
    texts.add(e.getMessage());
    texts.add(stage.toString());
    texts.add(Fixtures.settings(map("registry", "registry.example.com", "auth", map("username", "ci", "password", PASSWORD)))
        .toString());
    for (String text : texts) {
      assertFalse(text.contains(PASSWORD), "password in: " + text);
      assertFalse(text.contains(Fixtures.TOKEN), "job token in: " + text);
    }
    assertTrue(stage.toString().contains("****"), stage.toString());
  }

  @Test
  void closingTheStageClosesTheEngine() throws Exception {
    stage(map()).close();
    assertEquals(List.of("close"), engine.calls);
  }

  // ---------------------------------------------------------------------------------------------
  // Extra tags and the per-job option remove-local-tags.

  private static StageOptions keep() {
    return StageOptions.of(Map.of(DockerPushStage.REMOVE_LOCAL_TAGS, "false"));
  }

  private RecordingJobContext privateJob(List<String> extraTags) {
    engine.image(PRIVATE, "sha256:mine");
    return Fixtures.job(Fixtures.request("team/app:1", extraTags), PRIVATE, workspace);
  }

  @Test
  void validateRefusesExtraTagsThatAreNotTagsOrRepeatAndSaysWhatIsRight() throws Exception {
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    Map<List<String>, String> refused = new java.util.LinkedHashMap<>();
    refused.put(List.of("main", "-x"), "extra_tags[1] '-x' is not a tag; a tag is 1 to 128 letters, digits, '_', '.'"
        + " and '-', not starting with '.' or '-', e.g. 'main' or 'v1.2.3'");
    refused.put(List.of(""), "extra_tags[0] '' is not a tag");
    refused.put(List.of("a b"), "extra_tags[0] 'a b' is not a tag");
    refused.put(List.of("x".repeat(129)), "is not a tag");
    refused.put(List.of("main", "v1", "main"), "extra_tags[2] 'main' repeats extra_tags[0]; give each tag once");
    refused.put(List.of("1"), "extra_tags[0] '1' is the main tag, the one image_name 'team/app:1' gives; the image"
        + " is pushed under it anyway, so leave it out of extra_tags");
    List<String> seventeen = new ArrayList<>();
    for (int i = 0; i < 17; i++) {
      seventeen.add("t" + i);
    }
    refused.put(seventeen, "extra_tags has 17 tags, at most 16 are allowed");
    for (var entry : refused.entrySet()) {
      var request = Fixtures.request("team/app:1", entry.getKey());
      StageException e = assertThrows(StageException.class, () -> stage.validate(request, StageOptions.none()),
          entry.getKey().toString());
      assertEquals("push.invalid-request", e.code());
      assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
      assertTrue(e.getMessage().contains(entry.getValue()), e.getMessage());
      assertThrows(StageException.class, () -> stage.pushTargets(request), "pushTargets refuses it too");
    }
    StageException latest = assertThrows(StageException.class,
        () -> stage.validate(Fixtures.request("team/app", List.of("main", "latest"))));
    assertTrue(latest.getMessage().contains("extra_tags[1] 'latest' is the main tag, the one image_name 'team/app'"
        + " gets when it gives none"), latest.getMessage());
    StageException both = assertThrows(StageException.class,
        () -> stage.validate(Fixtures.request("team/app:1", List.of(".x", "1"))));
    assertTrue(both.getMessage().contains("'.x' is not a tag") && both.getMessage().contains("'1' is the main tag"),
        "every problem at once: " + both.getMessage());

    stage.validate(Fixtures.request("team/app:1", List.of("main", "Main", "v1.2.3", "_x", "x".repeat(128))));
    stage.validate(Fixtures.request("team/app:1", seventeen.subList(0, 16)));
    assertTrue(engine.calls.isEmpty(), "validate asks the engine nothing: " + engine.calls);
  }

  @Test
  void pushTargetsListOneTargetPerTagPushed() throws Exception {
    DockerPushStage stage = stage(map("registry", "Registry.Example.com:5000"));
    PushTarget target = new PushTarget(Optional.of("registry.example.com:5000"), "team/app");
    assertEquals(List.of(target, target, target),
        stage.pushTargets(Fixtures.request("team/app:1", List.of("main", "latest"))),
        "the main tag, then each extra tag");
    assertEquals(List.of(target), stage.pushTargets(Fixtures.request("team/app:1")));
    assertEquals(List.of(new PushTarget(Optional.empty(), "team/app"), new PushTarget(Optional.empty(), "team/app")),
        stage(map()).pushTargets(Fixtures.request("team/app:1", List.of("main"))));
  }

  @Test
  void extraTagsArePushedEachUnderItsLockAndGivenBackLikeTheMainTag() throws Exception {
    String main = DEST;
    String extraMain = "registry.example.com/team/app:main";
    String extraLatest = "registry.example.com/team/app:latest";
    engine.image(extraLatest, "sha256:theirs");
    Map<String, Map<String, String>> duringPush = new java.util.concurrent.ConcurrentHashMap<>();
    AtomicInteger attempt = new AtomicInteger();
    engine.script = n -> {
      duringPush.put(List.of(main, extraMain, extraLatest).get(attempt.getAndIncrement()), names());
      return FakeEngine.success(DIGEST);
    };
    List<String> confirmed = new CopyOnWriteArrayList<>();
    registry = (target, credentials) -> {
      confirmed.add(target.reference() + " locks=" + locks.size());
      return Optional.of(DIGEST);
    };
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(List.of("main", "latest"));
    stage.execute(job);

    assertEquals(List.of("push " + main, "push " + extraMain, "push " + extraLatest),
        engine.calls.stream().filter(c -> c.startsWith("push ")).toList(), "the main tag first, then in order");
    for (String name : List.of(main, extraMain, extraLatest)) {
      assertEquals("sha256:mine", duringPush.get(name).get(name), name + " pushed from the job's image");
    }
    assertEquals(null, duringPush.get(main).get(extraMain), "one borrowed name at a time");
    assertEquals("sha256:theirs", duringPush.get(main).get(extraLatest));
    assertEquals(List.of(main + " locks=3", extraMain + " locks=3", extraLatest + " locks=3"), confirmed,
        "each tag confirmed with the registry, every name locked until the last is");
    assertEquals(Optional.of(main), job.get(StageKeys.IMAGE_URI));
    assertEquals(Optional.of(DIGEST), job.get(StageKeys.IMAGE_DIGEST));
    assertEquals(Optional.of(List.of(extraMain, extraLatest)), job.get(StageKeys.EXTRA_IMAGE_URIS));
    assertEquals(Map.of(PRIVATE, "sha256:mine", extraLatest, "sha256:theirs"), names(),
        "the names are given back or removed: " + engine.calls);
    assertEquals(List.of(), heldNames());
    assertEquals(0, locks.size());
    assertEquals(3, job.leftovers().stream().filter(r -> r.startsWith("tag ")).count(), job.leftovers().toString());
    stage.cleanup(job);
    assertEquals(Map.of(extraLatest, "sha256:theirs"), names());
  }

  @Test
  void withoutExtraTagsNoExtraUriIsPublished() throws Exception {
    RecordingJobContext job = job("team/app:1");
    stage(map("registry", "registry.example.com")).execute(job);
    assertEquals(Optional.of(List.of()), job.get(StageKeys.EXTRA_IMAGE_URIS));
  }

  @Test
  void anExtraTagTheRegistryServesAnotherDigestUnderFailsThePush() throws Exception {
    registry = (target, credentials) -> Optional.of(target.tag().equals("latest") ? OTHER_DIGEST : DIGEST);
    engine.script = n -> n == 3 ? FakeEngine.success(OTHER_DIGEST) : FakeEngine.success(DIGEST);
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(List.of("main", "latest"));
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));
    assertEquals("push.digest-mismatch", e.code());
    assertEquals(ErrorKind.EXTERNAL, e.kind());
    assertTrue(e.getMessage().contains("serves " + OTHER_DIGEST + " under the extra tag registry.example.com/team/app:latest"
        + " but " + DIGEST + " under the main tag " + DEST), e.getMessage());
    assertEquals(Optional.empty(), job.get(StageKeys.IMAGE_URI), "nothing published");
    assertEquals(Optional.empty(), job.get(StageKeys.EXTRA_IMAGE_URIS));
    assertEquals(Map.of(PRIVATE, "sha256:mine"), names());
    assertEquals(0, locks.size());
  }

  @Test
  void aFailedExtraTagFailsTheJobAndEveryNameIsGivenBack() throws Exception {
    engine.image("registry.example.com/team/app:main", "sha256:theirs");
    for (StageOptions options : List.of(StageOptions.none(), keep())) {
      DockerPushStage stage = stage(map("registry", "registry.example.com"));
      RecordingJobContext job = privateJob(List.of("main", "latest")).options(options);
      engine.calls.clear();
      int before = engine.pushes();
      engine.script = n -> n == before + 2 ? FakeEngine.failure("denied: requested access to the resource is denied")
          : FakeEngine.success(DIGEST);
      StageException e = assertThrows(StageException.class, () -> stage.execute(job));
      assertEquals("push.denied", e.code(), options.toString());
      assertTrue(e.getMessage().contains("registry.example.com/team/app:main"), e.getMessage());
      assertEquals(2, engine.pushes() - before, "the last tag is not tried: " + engine.calls);
      assertEquals(Map.of(PRIVATE, "sha256:mine", "registry.example.com/team/app:main", "sha256:theirs"), names(),
          options + ": every name as it was, kept or not: " + engine.calls);
      assertEquals(List.of(), heldNames());
      assertEquals(0, locks.size());
      stage.cleanup(job);
    }
  }

  @Test
  void removeLocalTagsFalseKeepsThePushedNamesOnThePushedImage() throws Exception {
    String extraMain = "registry.example.com/team/app:main";
    engine.image(extraMain, "sha256:theirs");
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(List.of("main")).options(keep());
    List<Map<String, String>> duringConfirm = new CopyOnWriteArrayList<>();
    registry = (target, credentials) -> {
      duringConfirm.add(names());
      return Optional.of(DIGEST);
    };
    stage.execute(job);
    assertEquals("sha256:mine", duringConfirm.get(0).get(DEST), "not given back after the push: kept");
    assertEquals(Map.of(PRIVATE, "sha256:mine", DEST, "sha256:mine", extraMain, "sha256:mine"), names(),
        "both names on the pushed image, no holding name: " + engine.calls);
    assertTrue(engine.calls.stream().anyMatch(c -> c.startsWith("tag " + extraMain + " slipway.local/held-")),
        "the holding name is pointed at the job's image before it goes, so the other image is untagged, not"
            + " deleted: " + engine.calls);
    assertTrue(job.lines().contains("kept " + DEST + " on the pushed image (remove-local-tags=false)"), job.lines().toString());
    assertTrue(job.lines().contains("kept " + extraMain + " on the pushed image (remove-local-tags=false); the image"
        + " that had it before keeps its id without that name, as after docker tag"), job.lines().toString());
    List<String> records = job.leftovers();
    assertEquals(List.of("keep registry.example.com team/app 1 sha256:mine",
        "keep registry.example.com team/app main sha256:mine"), records.subList(records.size() - 2, records.size()),
        "each keep noted for crash recovery, after the push: " + records);
    assertEquals(0, locks.size(), "a kept name is no longer the job's to lock");

    stage.cleanup(job);
    assertEquals(Map.of(DEST, "sha256:mine", extraMain, "sha256:mine"), names(),
        "cleanup removes the build's private name only");

    // The next job borrows the kept names like anyone's, and gives them back.
    engine.image("slipway.local/job-2-0a1b2c3e:build", "sha256:second");
    RecordingJobContext next = Fixtures.job(Fixtures.request("team/app:1", List.of("main")),
        "slipway.local/job-2-0a1b2c3e:build", workspace);
    stage.execute(next);
    stage.cleanup(next);
    assertEquals(Map.of(DEST, "sha256:mine", extraMain, "sha256:mine"), names());
  }

  @Test
  void removeLocalTagsTrueIsTodaysBehaviour() throws Exception {
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(List.of("main"))
        .options(StageOptions.of(Map.of(DockerPushStage.REMOVE_LOCAL_TAGS, "true")));
    stage.execute(job);
    stage.cleanup(job);
    assertEquals(Map.of(), names());
  }

  @Test
  void aCancelledJobThatAskedToKeepItsNamesGivesThemBack() throws Exception {
    engine.image(DEST, "sha256:theirs");
    engine.hang = true;
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(List.of("main")).options(keep());
    CompletableFuture<Throwable> outcome = runAsync(stage, job);
    Thread.sleep(200);
    job.cancel();
    assertTrue(outcome.get(5, TimeUnit.SECONDS) instanceof InterruptedException);
    assertEquals(Map.of(PRIVATE, "sha256:mine", DEST, "sha256:theirs"), names());
    stage.cleanup(job);
    assertEquals(0, locks.size());
  }

  @Test
  void aKeepThatTheEngineInterruptsIsFinishedAtCleanup() throws Exception {
    engine.image(DEST, "sha256:theirs");
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext job = privateJob(List.of()).options(keep());
    registry = (target, credentials) -> {
      engine.failRemove = new EngineException(EngineException.Reason.UNREACHABLE, "the engine went away", null);
      return Optional.of(DIGEST);
    };
    stage.execute(job);
    assertTrue(job.lines().stream().anyMatch(l -> l.startsWith("could not finish keeping " + DEST)
        && l.contains("the engine went away")), job.lines().toString());
    assertEquals(1, locks.size(), "the name stays locked until its keep is finished");
    engine.failRemove = null;
    stage.cleanup(job);
    assertEquals(Map.of(DEST, "sha256:mine"), names(), engine.calls.toString());
    assertEquals(0, locks.size());
  }

  @Test
  void twoJobsWhoseTagsCrossEachTakeEveryNameWithoutDeadlock() throws Exception {
    // Job a pushes app:1 and app:2, job b app:2 and app:1. Both names are held elsewhere while
    // both jobs start waiting, then freed at once: taken in each job's own order, a would hold
    // app:1 and b app:2, each waiting for the other's for ever.
    engine.image("slipway.local/a-00000001:build", "sha256:" + "a".repeat(64));
    engine.image("slipway.local/b-00000002:build", "sha256:" + "b".repeat(64));
    LocalNameLocks.Held one = locks.acquire(DEST, () -> false, () -> {});
    LocalNameLocks.Held two = locks.acquire("registry.example.com/team/app:2", () -> false, () -> {});
    DockerPushStage stage = stage(map("registry", "registry.example.com"));
    RecordingJobContext a = Fixtures.job(Fixtures.request("team/app:1", List.of("2")), "slipway.local/a-00000001:build",
        workspace);
    RecordingJobContext b = Fixtures.job(Fixtures.request("team/app:2", List.of("1")), "slipway.local/b-00000002:build",
        workspace);
    CompletableFuture<Throwable> first = runAsync(stage, a);
    CompletableFuture<Throwable> second = runAsync(stage, b);
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (!(waiting(a) && waiting(b)) && System.nanoTime() < end) {
      Thread.sleep(10);
    }
    assertTrue(waiting(a) && waiting(b), a.lines() + " " + b.lines());
    Thread.sleep(100);
    String firstWait = "waiting for another job of this worker to finish its push of ";
    assertEquals(List.of(firstWait + DEST), b.lines().stream().filter(l -> l.startsWith(firstWait)).toList(),
        "b asks for app:1 first too, although its main tag is app:2");
    one.release();
    two.release();
    assertEquals(null, first.get(5, TimeUnit.SECONDS));
    assertEquals(null, second.get(5, TimeUnit.SECONDS));
    assertEquals(4, engine.pushes());
    stage.cleanup(a);
    stage.cleanup(b);
    assertEquals(Map.of(), names());
    assertEquals(0, locks.size());
  }

  private static boolean waiting(RecordingJobContext job) {
    return job.lines().stream().anyMatch(l -> l.startsWith("waiting for another job"));
  }

  private static CompletableFuture<Throwable> runAsync(DockerPushStage stage, RecordingJobContext job) {
    CompletableFuture<Throwable> outcome = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        stage.execute(job);
        outcome.complete(null);
      } catch (Throwable e) {
        outcome.complete(e);
      }
    }, "stage-under-test");
    t.setDaemon(true);
    t.start();
    return outcome;
  }

}

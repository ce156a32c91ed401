package dev.slipway.plugin.ecr;

import static dev.slipway.plugin.ecr.EcrTestSupport.config;
import static dev.slipway.plugin.ecr.EcrTestSupport.context;
import static dev.slipway.plugin.ecr.EcrTestSupport.environment;
import static dev.slipway.plugin.ecr.EcrTestSupport.printed;
import static dev.slipway.plugin.ecr.EcrTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.EcrStandIn;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The stage with the real AWS SDK against the ECR stand-in on 127.0.0.1. */
class EcrStageTest {
  @TempDir Path workspace;

  @Test
  void publishesTheRegistryLoginFromGetAuthorizationToken() throws Exception {
    try (EcrStandIn ecr =
            EcrStandIn.builder().registryHost("127.0.0.1:5000").password("registry-pass-7f3a9").start();
        Stage stage = stage(new EcrStageFactory(), ecr, "")) {
      RecordingJobContext context = context(workspace);

      long start = System.nanoTime();
      stage.execute(context);
      long millis = (System.nanoTime() - start) / 1_000_000;

      RegistryCredentials credentials = context.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow();
      assertEquals("127.0.0.1:5000", credentials.registry());
      assertEquals("AWS", credentials.username());
      assertEquals("registry-pass-7f3a9", credentials.password().reveal());
      assertEquals(1, ecr.tokensIssued());
      EcrStandIn.Request request = ecr.requests().get(0);
      assertEquals(ecr.accessKeyId(), request.accessKeyId());
      assertEquals("eu-west-1", request.region());
      assertEquals("ecr", request.service());
      assertTrue(request.signedHeaders().contains("x-amz-target"), request::toString);
      assertEquals(List.of(), request.registryIds());
      // The runtime masks published secrets and the raw token (what docker's config.json holds).
      assertTrue(context.secrets().contains("registry-pass-7f3a9"));
      assertTrue(context.secrets().contains(ecr.authorizationToken()));
      String line = String.join("\n", context.lines());
      assertTrue(line.contains("ECR login for 127.0.0.1:5000 (user AWS) from GetAuthorizationToken"), line);
      assertTrue(line.contains("1 attempt"), line);
      System.out.println("first GetAuthorizationToken in a fresh client: " + millis + " ms");
    }
  }

  @Test
  void backToBackJobsCallEcrOnce() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start();
        Stage stage = stage(new EcrStageFactory(), ecr, "")) {
      RecordingJobContext first = context(workspace);
      RecordingJobContext second = context(workspace);

      stage.execute(first);
      long start = System.nanoTime();
      stage.execute(second);
      long cachedMicros = (System.nanoTime() - start) / 1_000;

      assertEquals(1, ecr.calls());
      assertEquals(
          first.get(StageKeys.REGISTRY_CREDENTIALS), second.get(StageKeys.REGISTRY_CREDENTIALS));
      assertTrue(
          second.lines().stream().anyMatch(l -> l.contains("from the cache")), () -> second.lines().toString());
      // Each job's context masks the secrets, the cached ones too.
      assertTrue(second.secrets().contains(ecr.password()));
      System.out.println("cached ECR login: " + cachedMicros + " µs");
    }
  }

  @Test
  void concurrentJobsShareOneCall() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start();
        Stage stage = stage(new EcrStageFactory(), ecr, "")) {
      ExecutorService pool = Executors.newFixedThreadPool(8);
      try {
        CountDownLatch go = new CountDownLatch(1);
        List<Callable<RegistryCredentials>> jobs =
            java.util.stream.IntStream.range(0, 8)
                .<Callable<RegistryCredentials>>mapToObj(
                    i ->
                        () -> {
                          RecordingJobContext context = context(workspace);
                          go.await();
                          stage.execute(context);
                          return context.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow();
                        })
                .toList();
        List<Future<RegistryCredentials>> results = jobs.stream().map(pool::submit).toList();
        go.countDown();
        for (Future<RegistryCredentials> result : results) {
          assertEquals(ecr.password(), result.get(30, TimeUnit.SECONDS).password().reveal());
        }
      } finally {
        pool.shutdownNow();
      }
      assertEquals(1, ecr.calls());
    }
  }

  @Test
  void refreshesOnceLessThanTheShareOfItsLifetimeRemains() throws Exception {
    EcrTestSupport.TestClock clock = new EcrTestSupport.TestClock(Instant.parse("2026-11-27T08:00:00Z"));
    try (EcrStandIn ecr = EcrStandIn.builder().clock(clock).start();
        Stage stage = stage(new EcrStageFactory(clock), ecr, "refresh-when-remaining = 0.5")) {
      stage.execute(context(workspace));
      clock.advance(Duration.ofHours(5).plusMinutes(59)); // 6h01m of 12h left: more than half
      stage.execute(context(workspace));
      assertEquals(1, ecr.calls());

      clock.advance(Duration.ofMinutes(2)); // 5h59m left: less than half
      ecr.credentials("AWS", "rotated-password-2b7d");
      RecordingJobContext refreshed = context(workspace);
      stage.execute(refreshed);

      assertEquals(2, ecr.calls());
      assertEquals(
          "rotated-password-2b7d",
          refreshed.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow().password().reveal());
    }
  }

  @Test
  void refreshesAShortLivedTokenInRealTime() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.builder().tokenLifetime(Duration.ofMillis(1500)).start();
        Stage stage = stage(new EcrStageFactory(), ecr, "refresh-when-remaining = 0.5")) {
      stage.execute(context(workspace));
      stage.execute(context(workspace));
      assertEquals(1, ecr.calls(), "within the first half of its life the token is reused");

      Thread.sleep(900);
      stage.execute(context(workspace));

      assertEquals(2, ecr.calls(), "past half of its life the token is fetched anew");
    }
  }

  @Test
  void refreshWhenRemainingOfOneCallsEcrForEveryJob() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start();
        Stage stage = stage(new EcrStageFactory(), ecr, "refresh-when-remaining = 1")) {
      stage.execute(context(workspace));
      stage.execute(context(workspace));
      assertEquals(2, ecr.calls());
    }
  }

  @Test
  void differentRegistryIdsAreCachedApart() throws Exception {
    EcrStageFactory factory = new EcrStageFactory();
    try (EcrStandIn ecr =
            EcrStandIn.builder()
                .registryHost("111111111111", "111111111111.dkr.ecr.eu-west-1.amazonaws.com")
                .registryHost("222222222222", "222222222222.dkr.ecr.eu-west-1.amazonaws.com")
                .start();
        Stage one = stage(factory, ecr, "registry-ids = [\"111111111111\"]");
        Stage two = stage(factory, ecr, "registry-ids = [\"222222222222\"]")) {
      RecordingJobContext a = context(workspace);
      RecordingJobContext b = context(workspace);
      one.execute(a);
      two.execute(b);
      one.execute(context(workspace));
      two.execute(context(workspace));

      assertEquals(2, ecr.calls());
      assertEquals(2, factory.cachedTokens());
      assertEquals(
          List.of(List.of("111111111111"), List.of("222222222222")),
          ecr.requests().stream().map(EcrStandIn.Request::registryIds).toList());
      assertEquals(
          "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
          a.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow().registry());
      assertEquals(
          "222222222222.dkr.ecr.eu-west-1.amazonaws.com",
          b.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow().registry());
    }
  }

  @Test
  void withSeveralRegistriesTheImageNamePicksOne() throws Exception {
    try (EcrStandIn ecr =
            EcrStandIn.builder()
                .registryHost("111111111111", "111111111111.dkr.ecr.eu-west-1.amazonaws.com")
                .registryHost("222222222222", "222222222222.dkr.ecr.eu-west-1.amazonaws.com")
                .start();
        Stage stage =
            stage(new EcrStageFactory(), ecr, "registry-ids = [\"111111111111\", \"222222222222\"]")) {
      RecordingJobContext named =
          context(workspace, "222222222222.dkr.ecr.eu-west-1.amazonaws.com/app:1");
      RecordingJobContext unnamed = context(workspace, "app:1");
      stage.execute(named);
      stage.execute(unnamed);

      assertEquals(
          "222222222222.dkr.ecr.eu-west-1.amazonaws.com",
          named.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow().registry());
      assertEquals(
          "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
          unnamed.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow().registry());
      assertEquals(1, ecr.calls());
    }
  }

  @Test
  void sendsAndSignsTheSessionTokenOfTemporaryKeys() throws Exception {
    try (EcrStandIn ecr =
            EcrStandIn.builder()
                .credentials("ASIASLIPWAYTEMPORARY", "temporary-secret-key-5c1e")
                .sessionToken("session-token-e4f2a9b8")
                .start();
        Stage stage =
            new EcrStageFactory()
                .create(
                    config(ecr, ""),
                    environment(ecr).env(CredentialsSource.SESSION_TOKEN, "session-token-e4f2a9b8"))) {
      RecordingJobContext context = context(workspace);
      stage.execute(context);

      assertTrue(context.get(StageKeys.REGISTRY_CREDENTIALS).isPresent());
      assertTrue(ecr.requests().get(0).sessionToken());
      assertTrue(ecr.requests().get(0).signedHeaders().contains("x-amz-security-token"));
    }
  }

  @Test
  void aWrongSecretKeyIsAnAuthFailure() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start();
        Stage stage =
            new EcrStageFactory()
                .create(
                    config(ecr, ""),
                    environment(ecr).env(CredentialsSource.SECRET_ACCESS_KEY, "wrong-secret-key-0d9c7e"))) {
      StageException e = assertThrows(StageException.class, () -> stage.execute(context(workspace)));

      assertEquals("ecr.auth-failed", e.code());
      assertEquals(ErrorKind.CONFIGURATION, e.kind());
      assertFalse(e.retryable(), "the same credentials fail the same way");
      assertTrue(e.getMessage().contains("refused the credentials"), e::getMessage);
      assertTrue(e.getMessage().contains("InvalidSignatureException"), e::getMessage);
      assertTrue(e.getMessage().contains("AKIA…IN01"), e::getMessage);
      assertFalse(printed(e).contains("wrong-secret-key-0d9c7e"), "the secret key leaked");
      assertEquals(1, ecr.calls(), "auth errors are not retried");
      assertEquals(0, ecr.tokensIssued());
    }
  }

  @Test
  void anUnknownAccessKeyIsAnAuthFailure() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start();
        Stage stage =
            new EcrStageFactory()
                .create(
                    config(ecr, ""),
                    environment(ecr).env(CredentialsSource.ACCESS_KEY_ID, "AKIAUNKNOWNKEY000000"))) {
      StageException e = assertThrows(StageException.class, () -> stage.execute(context(workspace)));

      assertEquals("ecr.auth-failed", e.code());
      assertTrue(e.getMessage().contains("UnrecognizedClientException"), e::getMessage);
    }
  }

  @Test
  void accessDeniedIsAnAuthFailureThatNamesThePermission() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.builder().mode(EcrStandIn.Mode.ACCESS_DENIED).start();
        Stage stage = stage(new EcrStageFactory(), ecr, "")) {
      StageException e = assertThrows(StageException.class, () -> stage.execute(context(workspace)));

      assertEquals("ecr.auth-failed", e.code());
      assertTrue(e.getMessage().contains("denied GetAuthorizationToken"), e::getMessage);
      assertTrue(e.getMessage().contains("AccessDeniedException"), e::getMessage);
      assertTrue(e.getMessage().contains("allow ecr:GetAuthorizationToken"), e::getMessage);
      assertEquals(1, ecr.calls());
    }
  }

  @Test
  void aFailureIsNotCachedAndTheNextJobTriesAgain() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.builder().mode(EcrStandIn.Mode.ACCESS_DENIED).start();
        Stage stage = stage(new EcrStageFactory(), ecr, "")) {
      assertThrows(StageException.class, () -> stage.execute(context(workspace)));
      ecr.mode(EcrStandIn.Mode.OK);
      RecordingJobContext context = context(workspace);
      stage.execute(context);

      assertTrue(context.get(StageKeys.REGISTRY_CREDENTIALS).isPresent());
      assertEquals(2, ecr.calls());
    }
  }

  @Test
  void aDeadEndpointFailsAsUnreachableInSeconds() throws Exception {
    int port;
    try (java.net.ServerSocket socket =
        new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
      port = socket.getLocalPort();
    }
    Stage stage =
        new EcrStageFactory()
            .create(
                config(
                    "region = eu-west-1, endpoint-override = \"http://127.0.0.1:" + port + "\""),
                new EcrTestSupport.Environment()
                    .env(CredentialsSource.ACCESS_KEY_ID, "AKIASLIPWAYDEADPORT0")
                    .env(CredentialsSource.SECRET_ACCESS_KEY, "dead-port-secret-9a8b"));
    try (stage) {
      long start = System.nanoTime();
      StageException e = assertThrows(StageException.class, () -> stage.execute(context(workspace)));
      long millis = (System.nanoTime() - start) / 1_000_000;

      assertEquals("ecr.unreachable", e.code());
      assertEquals(ErrorKind.EXTERNAL, e.kind());
      assertTrue(e.retryable(), "an endpoint that cannot be reached may answer later");
      assertTrue(e.getMessage().contains("cannot reach ECR at http://127.0.0.1:" + port), e::getMessage);
      assertTrue(e.getMessage().contains("ConnectException"), e::getMessage);
      assertTrue(e.getMessage().contains("3 attempts"), e::getMessage);
      assertTrue(millis < 15_000, "took " + millis + " ms");
      System.out.println("dead endpoint (connection refused, 3 attempts) failed in " + millis + " ms");
    }
  }

  @Test
  void anEndpointThatNeverAnswersFailsAsUnreachableWithinTheApiCallTimeout() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.builder().mode(EcrStandIn.Mode.HANG).start();
        Stage stage = stage(new EcrStageFactory(), ecr, "api-call-timeout = 1s, connect-timeout = 500ms")) {
      long start = System.nanoTime();
      StageException e = assertThrows(StageException.class, () -> stage.execute(context(workspace)));
      long millis = (System.nanoTime() - start) / 1_000_000;

      assertEquals("ecr.unreachable", e.code());
      assertTrue(e.getMessage().contains("no answer in time"), e::getMessage);
      assertTrue(millis < 5_000, "took " + millis + " ms");
      System.out.println("silent endpoint (api-call-timeout 1s) failed in " + millis + " ms");
    }
  }

  @Test
  void serverErrorsAreRetriedThenReportedAsUnavailable() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.builder().mode(EcrStandIn.Mode.SERVER_ERROR).start();
        Stage stage = stage(new EcrStageFactory(), ecr, "max-attempts = 3")) {
      StageException e = assertThrows(StageException.class, () -> stage.execute(context(workspace)));

      assertEquals("ecr.unavailable", e.code());
      assertEquals(ErrorKind.EXTERNAL, e.kind());
      assertTrue(e.retryable(), "ECR failing on every attempt may recover");
      assertEquals(3, ecr.calls());
      assertTrue(e.getMessage().contains("ServerException"), e::getMessage);
      assertTrue(e.getMessage().contains("on all 3 attempts"), e::getMessage);
    }
  }

  @Test
  void anEmptyAnswerIsAnInvalidResponse() throws Exception {
    assertInvalidResponse(EcrStandIn.Mode.EMPTY_AUTHORIZATION_DATA, "has no authorizationData");
  }

  @Test
  void anUndecodableTokenIsAnInvalidResponse() throws Exception {
    assertInvalidResponse(EcrStandIn.Mode.UNDECODABLE_TOKEN, "is not base64");
  }

  @Test
  void anAnswerThatIsNotJsonIsAnInvalidResponse() throws Exception {
    assertInvalidResponse(EcrStandIn.Mode.NOT_JSON, "is not ECR's JSON");
  }

  private void assertInvalidResponse(EcrStandIn.Mode mode, String expected) throws Exception {
    try (EcrStandIn ecr = EcrStandIn.builder().mode(mode).start();
        Stage stage = stage(new EcrStageFactory(), ecr, "")) {
      RecordingJobContext context = context(workspace);
      StageException e = assertThrows(StageException.class, () -> stage.execute(context));

      assertEquals("ecr.invalid-response", e.code(), e::getMessage);
      assertFalse(e.retryable(), e::getMessage);
      assertTrue(e.getMessage().contains(expected), e::getMessage);
      assertTrue(e.getMessage().contains("check that endpoint-override points at ECR's API"), e::getMessage);
      assertTrue(context.get(StageKeys.REGISTRY_CREDENTIALS).isEmpty());
    }
  }

  @Test
  void aCancelledJobAbortsTheCallInFlight() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.builder().mode(EcrStandIn.Mode.HANG).start();
        Stage stage = stage(new EcrStageFactory(), ecr, "api-call-timeout = 30s")) {
      RecordingJobContext context = context(workspace);
      ExecutorService pool = Executors.newSingleThreadExecutor();
      try {
        Future<?> job =
            pool.submit(
                () -> {
                  stage.execute(context);
                  return null;
                });
        assertTrue(ecr.awaitInFlight(1, Duration.ofSeconds(10)), "the call never arrived");
        Thread.sleep(100);
        long start = System.nanoTime();
        context.cancel(); // the runtime's cancel action; it does not interrupt here
        java.util.concurrent.ExecutionException e =
            assertThrows(java.util.concurrent.ExecutionException.class, () -> job.get(10, TimeUnit.SECONDS));
        long millis = (System.nanoTime() - start) / 1_000_000;

        assertTrue(e.getCause() instanceof InterruptedException, () -> printed(e));
        assertTrue(millis < 2_000, "took " + millis + " ms after the cancel");
        System.out.println("cancelled ECR call ended " + millis + " ms after the cancel");
      } finally {
        pool.shutdownNow();
      }
    }
  }

  @Test
  void noSecretReachesLogsMessagesOrPublishedValues() throws Exception {
    String secretKey = "secret-key-never-printed-4e1f";
    String password = "password-never-printed-8c2d";
    String sessionToken = "session-token-never-printed-77aa";
    try (EcrStandIn ecr =
        EcrStandIn.builder()
            .credentials("AKIASLIPWAYSECRECY01", secretKey)
            .sessionToken(sessionToken)
            .password(password)
            .start()) {
      EcrTestSupport.Environment environment =
          environment(ecr).env(CredentialsSource.SESSION_TOKEN, sessionToken);
      StringBuilder seen = new StringBuilder();
      try (Stage stage = new EcrStageFactory().create(config(ecr, ""), environment)) {
        RecordingJobContext ok = context(workspace);
        stage.execute(ok);
        seen.append(ok.lines()).append(ok.get(StageKeys.REGISTRY_CREDENTIALS).orElseThrow());
        seen.append(stage);
        for (EcrStandIn.Mode mode :
            List.of(
                EcrStandIn.Mode.ACCESS_DENIED,
                EcrStandIn.Mode.UNDECODABLE_TOKEN,
                EcrStandIn.Mode.NOT_JSON,
                EcrStandIn.Mode.SERVER_ERROR)) {
          ecr.mode(mode);
          try (Stage fresh =
              new EcrStageFactory().create(config(ecr, "max-attempts = 1"), environment)) {
            RecordingJobContext failing = context(workspace);
            StageException e = assertThrows(StageException.class, () -> fresh.execute(failing));
            seen.append(printed(e)).append(failing.lines());
          }
        }
      }
      try (Stage wrongKey =
          new EcrStageFactory()
              .create(
                  config(ecr, ""),
                  environment.env(CredentialsSource.SECRET_ACCESS_KEY, secretKey + "-but-wrong"))) {
        RecordingJobContext failing = context(workspace);
        StageException e = assertThrows(StageException.class, () -> wrongKey.execute(failing));
        seen.append(printed(e)).append(failing.lines());
      }
      String all = seen.toString();
      assertFalse(all.contains(secretKey), "secret key leaked: " + all);
      assertFalse(all.contains(password), "password leaked: " + all);
      assertFalse(all.contains(sessionToken), "session token leaked: " + all);
      assertFalse(all.contains(ecr.authorizationToken()), "token leaked: " + all);
    }
  }
}

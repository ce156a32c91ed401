package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.CancelJobRequest;
import dev.slipway.proto.v1.CancelJobResponse;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.logging.Logging;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.TestCertificates;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.ByteArrayOutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Callers and their scopes over real TLS and gRPC, with the real git stage and a real git server:
 * every refusal has its exact status, touches neither the git server nor the disk, and leaves
 * the worker FREE; jobs belong to their caller; tokens rotate without a restart.
 */
class CallerScopesTest {
  static final String CI = "ci-" + UUID.randomUUID();
  static final String DEPLOY = "deploy-" + UUID.randomUUID();
  static final String ADMIN = "admin-" + UUID.randomUUID();

  @TempDir Path dir;
  TestCertificates.Authority ca;
  Path caFile;
  TestCertificates.Issued server;
  GitHttpServer git;
  Worker worker;
  ManagedChannel channel;

  @BeforeEach
  void setUp() throws Exception {
    ca = TestCertificates.newAuthority("scopes CA");
    caFile = ca.writeCertificate(dir.resolve("ca.pem"));
    server = ca.issueServer(dir, "worker");
    GitRepos repos = new GitRepos(dir.resolve("repos"));
    for (String name : List.of("app.git", "other.git", "secret.git")) {
      repos.repository(name).file("Dockerfile", "FROM scratch\n").commit("first").build();
    }
    git = GitHttpServer.builder(repos.root()).anonymous("app.git").anonymous("other.git")
        .anonymous("secret.git").start();
  }

  @AfterEach
  void tearDown() throws Exception {
    TlsClients.close(channel);
    TestWorkers.close(worker, null);
    git.close();
  }

  private String config(String extra) {
    Path ci = TlsClients.tokenFile(dir, "ci", CI);
    Path deploy = TlsClients.tokenFile(dir, "deploy", DEPLOY);
    Path admin = TlsClients.tokenFile(dir, "admin", ADMIN);
    return "worker.tls { cert-file = \"" + server.certFile() + "\", key-file = \""
        + server.keyFile() + "\" }\n"
        + "worker.callers = [\n"
        + "  { name = ci, token-file = \"" + ci + "\","
        + "    allowed-repositories = [\"http://127.0.0.1:*/app\", \"https://git.example.test/**\"],"
        + "    allowed-push-repositories = [\"registry.acme.test/ci/**\", \"{auth}/ci/**\"] }\n"
        + "  { name = deploy, token-file = \"" + deploy + "\", allowed-repositories = [\"**\"],"
        + "    allowed-push-repositories = [\"**\"] }\n"
        + "  { name = root, token-file = \"" + admin + "\", admin = true,"
        + "    allowed-repositories = [\"**\"], allowed-push-repositories = [\"**\"] }\n"
        + "]\n"
        + "worker.policy {\n"
        + "  allowed-repositories = [\"http://127.0.0.1:*/app.git\", \"http://127.0.0.1:*/other\","
        + "    \"https://git.example.test/**\"]\n"
        + "  allowed-push-repositories = [\"registry.acme.test/ci/**\", \"{auth}/ci/**\","
        + "    \"registry.acme.test/team/**\"]\n"
        + "}\n" + extra;
  }

  private Worker startGitWorker(String extra) throws Exception {
    worker = TestWorkers.start(dir, config("worker.pipeline = [git, test-push]\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.test-push.registry = \"registry.acme.test\"\n" + extra));
    channel = TlsClients.channel(worker.port(), caFile, null);
    return worker;
  }

  private JobRequest.Builder job(String repo, String image) {
    return JobRequest.newBuilder().setRepoUrl(git.url(repo)).setImageName(image);
  }

  /** One hostile or out-of-scope request and what it must get. */
  record Refusal(String what, String token, JobRequest request, Status.Code code,
      String message) {}

  @Test
  void everyRefusalHasItsStatusAndTouchesNothing() throws Exception {
    startGitWorker("");
    String port = String.valueOf(git.port());
    List<Refusal> refusals = List.of(
        new Refusal("no token", null, job("app.git", "ci/app:1").build(),
            Status.Code.UNAUTHENTICATED, "this worker requires credentials"),
        new Refusal("unknown token", "not-a-known-token-at-all", job("app.git", "ci/app:1").build(),
            Status.Code.UNAUTHENTICATED, "a bearer token that belongs to no caller"),
        new Refusal("a near miss", CI + "x", job("app.git", "ci/app:1").build(),
            Status.Code.UNAUTHENTICATED, "belongs to no caller"),
        new Refusal("repository outside the caller's", CI, job("other.git", "ci/app:1").build(),
            Status.Code.PERMISSION_DENIED, "repo_url http://127.0.0.1:" + port
                + "/other is not in caller 'ci' allowed-repositories [http://127.0.0.1:*/app,"),
        new Refusal("credentials in the URL do not change the repository", CI,
            JobRequest.newBuilder().setRepoUrl("http://u:p@127.0.0.1:" + port + "/other.git")
                .setImageName("ci/app:1").build(),
            Status.Code.INVALID_ARGUMENT, "credentials"),
        new Refusal("dot segments are refused, not resolved", CI,
            JobRequest.newBuilder().setRepoUrl("http://127.0.0.1:" + port
                + "/app.git/../other.git").setImageName("ci/app:1").build(),
            Status.Code.INVALID_ARGUMENT, "'..' segment"),
        new Refusal("an empty segment hides a dot segment from a resolver", CI,
            JobRequest.newBuilder().setRepoUrl("http://127.0.0.1:" + port
                + "//app/x/../../other.git").setImageName("ci/app:1").build(),
            Status.Code.INVALID_ARGUMENT, "segment"),
        new Refusal("an escaped dot segment", CI,
            JobRequest.newBuilder().setRepoUrl("http://127.0.0.1:" + port
                + "/app/%2e%2e/other.git").setImageName("ci/app:1").build(),
            Status.Code.INVALID_ARGUMENT, "repo_url"),
        new Refusal("an escaped slash", CI,
            JobRequest.newBuilder().setRepoUrl("http://127.0.0.1:" + port
                + "/app..%2fother.git").setImageName("ci/app:1").build(),
            Status.Code.INVALID_ARGUMENT, "repo_url"),
        new Refusal("push repository outside the caller's", CI,
            job("app.git", "registry.acme.test/prod/payments:latest").build(),
            Status.Code.PERMISSION_DENIED, "image_name pushes to registry.acme.test/prod/payments,"
                + " which is not in caller 'ci' allowed-push-repositories"),
        new Refusal("the caller allows it, the worker policy does not (repository)", DEPLOY,
            job("secret.git", "ci/app:1").build(), Status.Code.PERMISSION_DENIED,
            "/secret is not allowed by this worker's policy (worker.policy.allowed-repositories)"),
        new Refusal("the caller allows it, the worker policy does not (push)", DEPLOY,
            job("app.git", "registry.acme.test/prod/app:1").build(),
            Status.Code.PERMISSION_DENIED,
            "registry.acme.test/prod/app, which this worker's policy does not allow"),
        new Refusal("malformed and authenticated: the request's own check", CI,
            job("app.git", "").build(), Status.Code.INVALID_ARGUMENT, "image_name is required"));

    for (Refusal r : refusals) {
      for (boolean streaming : new boolean[] {false, true}) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> {
          var stub = TlsClients.stub(channel, r.token());
          if (streaming) {
            stub.streamJob(r.request()).forEachRemaining(x -> { });
          } else {
            stub.runJob(r.request());
          }
        }, r.what());
        assertEquals(r.code(), e.getStatus().getCode(), r.what() + ": " + e.getStatus());
        assertTrue(String.valueOf(e.getStatus().getDescription()).contains(r.message()),
            r.what() + ": " + e.getStatus().getDescription());
      }
    }
    assertEquals(List.of(), git.requests(), "nothing was cloned");
    assertEquals(0, TestWorkers.workspaceCount(dir));
    assertEquals(WorkerStatus.WORKER_STATUS_FREE,
        TlsClients.stub(channel, CI).ping(PingRequest.getDefaultInstance()).getStatus());

    // The same caller, in scope: a real clone, and the push goes where it was allowed.
    JobResponse ok = TlsClients.stub(channel, CI).runJob(job("app.git", "ci/app:1").build());
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, ok.getOutcome(), ok.toString());
    assertEquals("registry.acme.test/ci/app", ok.getImageUri());
    assertFalse(git.requests().isEmpty());
    // An exact commit and a ref reach the git stage through the contract.
    JobResponse exact = TlsClients.stub(channel, CI).runJob(job("app.git", "ci/app:1")
        .setRef("refs/heads/main").setCommitSha(ok.getCommitSha()).build());
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, exact.getOutcome(), exact.toString());
    assertEquals(ok.getCommitSha(), exact.getCommitSha());
    // A push target whose registry only the auth stage knows passes only an {auth} rule.
    worker.stop();
    worker = null;
    TlsClients.close(channel);
    startGitWorker("worker.stages.test-push.registry = \"\"\n");
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, TlsClients.stub(channel, CI)
        .runJob(job("app.git", "ci/app:2").build()).getOutcome());
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, CI).runJob(job("app.git", "team/app:2").build()));
    assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("known only once the auth stage runs"),
        e.getStatus().getDescription());
    assertFalse(e.getStatus().getDescription().contains("registry.acme.test/team"),
        "the worker's policy is named, not listed");
  }

  @Test
  void jobsBelongToTheirCaller() throws Exception {
    worker = TestWorkers.start(dir, config("worker.pipeline = [test-block]\n"));
    channel = TlsClients.channel(worker.port(), caFile, null);
    var ciStub = JobServiceGrpc.newFutureStub(channel).withCallCredentials(TlsClients.bearer(CI));
    var running = ciStub.runJob(TestWorkers.request().setJobId("ci-job-1").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, java.time.Duration.ofSeconds(5), CI);

    PingResponse own = TlsClients.stub(channel, CI).ping(PingRequest.getDefaultInstance());
    assertEquals("ci-job-1", own.getCurrentJobId());
    PingResponse other = TlsClients.stub(channel, DEPLOY).ping(PingRequest.getDefaultInstance());
    assertEquals(WorkerStatus.WORKER_STATUS_BUSY, other.getStatus());
    assertEquals("", other.getCurrentJobId(), "another caller's job id is not shown");
    assertEquals("ci-job-1", TlsClients.stub(channel, ADMIN)
        .ping(PingRequest.getDefaultInstance()).getCurrentJobId());

    StatusRuntimeException busy = assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, DEPLOY).runJob(TestWorkers.request().build()));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, busy.getStatus().getCode());
    assertFalse(busy.getStatus().getDescription().contains("ci-job-1"),
        busy.getStatus().getDescription());

    StatusRuntimeException foreign = assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, DEPLOY).cancelJob(
            CancelJobRequest.newBuilder().setJobId("ci-job-1").build()));
    StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, DEPLOY).cancelJob(
            CancelJobRequest.newBuilder().setJobId("no-such-job").build()));
    assertEquals(Status.Code.NOT_FOUND, foreign.getStatus().getCode());
    assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
    assertEquals(foreign.getStatus().getDescription().replace("ci-job-1", "X"),
        unknown.getStatus().getDescription().replace("no-such-job", "X"),
        "another caller's job looks exactly like no job");
    assertFalse(running.isDone(), "the job still runs");

    CancelJobResponse cancelled = TlsClients.stub(channel, ADMIN).cancelJob(
        CancelJobRequest.newBuilder().setJobId("ci-job-1").build());
    assertTrue(cancelled.getCancelled(), cancelled.toString());
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED,
        running.get(10, TimeUnit.SECONDS).getOutcome());
  }

  @Test
  void pingAndHealthWithoutCredentials() throws Exception {
    worker = TestWorkers.start(dir, config("worker.pipeline = [test-block]\n"));
    channel = TlsClients.channel(worker.port(), caFile, null);
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, null).ping(PingRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    // Health is open by default, for probes.
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel)
        .check(HealthCheckRequest.getDefaultInstance()).getStatus());
    worker.stop();
    TlsClients.close(channel);

    worker = TestWorkers.start(dir, config("worker.pipeline = [test-block]\n"
        + "worker.open-methods = [grpc.health.v1.Health, \"slipway.worker.v1.JobService/Ping\"]\n"));
    channel = TlsClients.channel(worker.port(), caFile, null);
    var running = JobServiceGrpc.newFutureStub(channel).withCallCredentials(TlsClients.bearer(CI))
        .runJob(TestWorkers.request().setJobId("ci-job-2").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY,
        java.time.Duration.ofSeconds(5), null);
    PingResponse open = TlsClients.stub(channel, null).ping(PingRequest.getDefaultInstance());
    assertEquals(WorkerStatus.WORKER_STATUS_BUSY, open.getStatus());
    assertEquals("", open.getCurrentJobId());
    // An open method still refuses credentials that are wrong.
    assertEquals(Status.Code.UNAUTHENTICATED, assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, "wrong-token-wrong-token").ping(
            PingRequest.getDefaultInstance())).getStatus().getCode());
    // Only Ping was opened.
    assertEquals(Status.Code.UNAUTHENTICATED, assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, null).cancelJob(
            CancelJobRequest.newBuilder().setJobId("ci-job-2").build())).getStatus().getCode());
    TlsClients.stub(channel, CI).cancelJob(
        CancelJobRequest.newBuilder().setJobId("ci-job-2").build());
    running.get(10, TimeUnit.SECONDS);
  }

  @Test
  void aRotatedTokenReplacesTheOldOneWithoutARestart() throws Exception {
    worker = TestWorkers.start(dir, config("worker.pipeline = [test-publish]\n"));
    channel = TlsClients.channel(worker.port(), caFile, null);
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, TlsClients.stub(channel, CI)
        .runJob(TestWorkers.request().build()).getOutcome());
    String rotated = "rotated-" + UUID.randomUUID();
    Files.writeString(dir.resolve("ci.token"), rotated + "\n");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    boolean refused = false;
    while (!refused && System.nanoTime() < deadline) {
      try {
        TlsClients.stub(channel, CI).ping(PingRequest.getDefaultInstance());
        Thread.sleep(100);
      } catch (StatusRuntimeException e) {
        assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
        refused = true;
      }
    }
    assertTrue(refused, "the old token is refused once the file changed");
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, TlsClients.stub(channel, rotated)
        .runJob(TestWorkers.request().build()).getOutcome());
    // Removing the file revokes the token.
    Files.delete(dir.resolve("ci.token"));
    Thread.sleep(1200);
    assertEquals(Status.Code.UNAUTHENTICATED, assertThrows(StatusRuntimeException.class,
        () -> TlsClients.stub(channel, rotated).ping(PingRequest.getDefaultInstance()))
        .getStatus().getCode());
  }

  @Test
  void mutualTlsCertificatesIdentifyCallersBySubjectOrSan() throws Exception {
    TestCertificates.Authority clients = TestCertificates.newAuthority("clients CA");
    Path clientsFile = clients.writeCertificate(dir.resolve("clients.pem"));
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish]\n"
        + "worker.tls { cert-file = \"" + server.certFile() + "\", key-file = \""
        + server.keyFile() + "\", client-ca-file = \"" + clientsFile + "\" }\n"
        + "worker.callers = [\n"
        + "  { name = builder, certificate-subject = \"CN=builder, O=Acme\","
        + "    allowed-repositories = [\"https://git.example.test/acme/*\"],"
        + "    allowed-push-repositories = [\"**\"] }\n"
        + "  { name = spiffe, certificate-san = \"spiffe://acme/orchestrator\","
        + "    allowed-repositories = [\"https://git.example.test/other/*\"] }\n"
        + "]\n");
    ByteArrayOutputStream logs = new ByteArrayOutputStream();
    Logging.configure("text", "INFO", logs);
    try {
      ManagedChannel builder = TlsClients.channel(worker.port(), caFile,
          clients.issueClient(dir, "builder", "CN=builder,O=Acme"));
      ManagedChannel spiffe = TlsClients.channel(worker.port(), caFile,
          clients.issueClient(dir, "spiffe", "CN=whatever", "spiffe://acme/orchestrator"));
      ManagedChannel stranger = TlsClients.channel(worker.port(), caFile,
          clients.issueClient(dir, "stranger", "CN=stranger"));
      try {
        JobResponse ok = TlsClients.stub(builder, null).runJob(TestWorkers.request().build());
        assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, ok.getOutcome(), ok.toString());
        StatusRuntimeException denied = assertThrows(StatusRuntimeException.class,
            () -> TlsClients.stub(spiffe, null).runJob(TestWorkers.request().build()));
        assertEquals(Status.Code.PERMISSION_DENIED, denied.getStatus().getCode());
        assertTrue(denied.getStatus().getDescription().contains("caller 'spiffe'"));
        assertEquals(Status.Code.UNAUTHENTICATED, assertThrows(StatusRuntimeException.class,
            () -> TlsClients.stub(stranger, null).ping(PingRequest.getDefaultInstance()))
            .getStatus().getCode());
      } finally {
        TlsClients.close(builder);
        TlsClients.close(spiffe);
        TlsClients.close(stranger);
      }
      String log = logs.toString(StandardCharsets.UTF_8);
      assertTrue(log.contains("caller=builder"), "job lines name the caller:\n" + log);
    } finally {
      Logging.configure("text", "INFO");
    }
  }

  @Test
  void theCallerIsInJsonLogsAndMetricsButNoTokenIs() throws Exception {
    ByteArrayOutputStream logs = new ByteArrayOutputStream();
    Logging.configure("json", "INFO", logs);
    try {
      worker = TestWorkers.start(dir, config("worker.pipeline = [test-publish]\n"
          + "worker.metrics { enabled = true, bind-address = 127.0.0.1, port = 0 }\n"));
      channel = TlsClients.channel(worker.port(), caFile, null);
      TlsClients.stub(channel, CI).runJob(TestWorkers.request().build());
      assertThrows(StatusRuntimeException.class, () -> TlsClients.stub(channel, "guess-guess-guess")
          .runJob(TestWorkers.request().build()));
    } finally {
      Logging.configure("text", "INFO");
    }
    String log = logs.toString(StandardCharsets.UTF_8);
    assertTrue(log.contains("\"caller\":\"ci\""), log);
    HttpURLConnection c = (HttpURLConnection) URI.create("http://127.0.0.1:"
        + worker.metricsPort() + "/metrics").toURL().openConnection();
    String metrics = new String(c.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(metrics.matches("(?s).*slipway_jobs_total\\{caller=\"ci\",outcome=\"succeeded\"} 1(\\.0)?\n.*"),
        metrics);
    for (String secret : List.of(CI, DEPLOY, ADMIN, "guess-guess-guess")) {
      assertFalse(log.contains(secret), "a token reached the log");
      assertFalse(metrics.contains(secret), "a token reached the metrics");
    }
  }

  @Test
  void callerProblemsAreStartUpErrorsAllAtOnce() throws Exception {
    Path shortToken = TlsClients.tokenFile(dir, "short", "abc");
    StartupException e = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-publish]\n"
            + "worker.callers = [\n"
            + "  { name = a, token-file = \"" + dir.resolve("missing.token") + "\" }\n"
            + "  { name = a, certificate-subject = \"CN=x\", certificate-san = \"y\" }\n"
            + "  { name = \"bad name\", token-file = \"" + shortToken + "\", admn = true }\n"
            + "  { name = d, certificate-subject = \"not a dn\" }\n"
            + "]\n"));
    String all = String.join("\n", e.problems());
    assertTrue(all.contains("token-file " + dir.resolve("missing.token")
        + " does not exist or cannot be read"), all);
    assertTrue(all.contains("name 'a' is given to two callers"), all);
    assertTrue(all.contains("give exactly one of token-file, certificate-subject or"
        + " certificate-san; found [certificate-subject, certificate-san]"), all);
    assertTrue(all.contains("name 'bad name' must be"), all);
    assertTrue(all.contains("admn is not a caller setting"), all);
    assertTrue(all.contains("shorter than 16 characters"), all);
    assertTrue(all.contains("'not a dn' is not a distinguished name"), all);
  }
}

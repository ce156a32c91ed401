package dev.slipway.worker.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.testkit.TestCertificates;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code worker submit | ping | cancel} against a real worker on loopback. */
class ClientCommandsTest {
  @TempDir Path dir;
  Worker worker;
  Server tlsServer;
  final StringWriter out = new StringWriter();
  final StringWriter err = new StringWriter();
  /** The authorization header of every call the TLS server got ("" when none). */
  final List<String> authorizations = new CopyOnWriteArrayList<>();
  /** The subject of the client certificate of every call the TLS server got ("" when none). */
  final List<String> clientSubjects = new CopyOnWriteArrayList<>();

  @AfterEach
  void stop() throws InterruptedException {
    if (worker != null) {
      worker.stop();
    }
    if (tlsServer != null) {
      tlsServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private void start(String pipeline) throws Exception {
    Path conf = dir.resolve("w.conf");
    Files.writeString(conf, "worker.bind-address = 127.0.0.1\nworker.port = 0\nworker.id = cli-w\n"
        + "worker.workspace-root = \"" + dir.resolve("ws") + "\"\n" + pipeline);
    worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, Environment.of(Map.of()),
        new Properties(), dir));
    worker.start();
  }

  private int run(String... args) {
    return WorkerCli.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
  }

  /** Answers Ping as worker {@code tls-w}, FREE. */
  static final class FakeJobService extends JobServiceGrpc.JobServiceImplBase {
    @Override
    public void ping(PingRequest request, StreamObserver<PingResponse> response) {
      response.onNext(PingResponse.newBuilder().setWorkerId("tls-w")
          .setStatus(WorkerStatus.WORKER_STATUS_FREE).build());
      response.onCompleted();
    }
  }

  /** Records each call's authorization header and client certificate subject. */
  final class Recorder implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      String authorization = headers.get(ClientConnection.AUTHORIZATION);
      authorizations.add(authorization == null ? "" : authorization);
      String subject = "";
      SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
      try {
        if (session != null && session.getPeerCertificates().length > 0) {
          subject = ((X509Certificate) session.getPeerCertificates()[0])
              .getSubjectX500Principal().getName();
        }
      } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
        // No client certificate.
      }
      clientSubjects.add(subject);
      return next.startCall(call, headers);
    }
  }

  /** Serves the fake JobService over TLS on 127.0.0.1 and returns the target. */
  private String startTlsServer(ServerCredentials credentials) throws Exception {
    tlsServer = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0), credentials)
        .addService(ServerInterceptors.intercept(new FakeJobService(), new Recorder()))
        .build().start();
    return "127.0.0.1:" + tlsServer.getPort();
  }

  private String startTlsServer(TestCertificates.Issued server) throws Exception {
    return startTlsServer(TlsServerCredentials.create(
        server.certFile().toFile(), server.keyFile().toFile()));
  }

  @Test
  void submitDetachedThenWatchAndStatus() throws Exception {
    start("worker.pipeline = [test-block, test-publish]\n"
        + "worker.stages.test-block { duration = 500ms, log-interval = 50ms }\n");
    String target = "127.0.0.1:" + worker.port();
    assertEquals(0, run("submit", "-t", target, "--detach", "--repo",
        "https://git.example.test/acme/app.git", "--image", "acme/app:1", "--job-id", "cli-1"));
    assertEquals("cli-1", out.toString().strip(), "--detach prints the id and returns");
    out.getBuffer().setLength(0);
    assertEquals(0, run("status", "-t", target, "cli-1"));
    assertTrue(out.toString().contains("job cli-1 running"), out.toString());
    out.getBuffer().setLength(0);
    assertEquals(0, run("watch", "-t", target, "--plain", "cli-1"));
    assertTrue(out.toString().contains("[test-block] still working"), out.toString());
    assertTrue(out.toString().contains("job cli-1 succeeded"), out.toString());
    out.getBuffer().setLength(0);
    assertEquals(0, run("status", "-t", target, "cli-1"));
    assertTrue(out.toString().contains("job cli-1 finished"), out.toString());
    assertEquals(ClientCommands.EXIT_UNREACHABLE, run("status", "-t", target, "nope"));
    assertTrue(err.toString().contains("NOT_FOUND"), err.toString());
    assertEquals(ClientCommands.EXIT_JOB_FAILED, run("cancel", "-t", target, "nope"));
  }

  @Test
  void secretsGoInPlaintextOnlyToThisHost() {
    ClientCommands.Target t = new ClientCommands.Target();
    for (String local : new String[] {"127.0.0.1:50052", "localhost:1", "[::1]:50052"}) {
      t.target = local;
      assertTrue(t.mayCarrySecrets(), local);
    }
    t.target = "worker-1.build.internal:50052";
    assertFalse(t.mayCarrySecrets(), "plaintext to another host");
    t.caFile = java.nio.file.Path.of("ca.pem");
    assertTrue(t.mayCarrySecrets(), "over TLS");
  }

  @Test
  void pingOverTlsTrustingTheCaFile() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    Path caFile = ca.writeCertificate(dir.resolve("ca.crt"));
    String target = startTlsServer(ca.issueServer(dir, "server"));
    assertEquals(0, run("ping", "-t", target, "--tls", "--ca-file", caFile.toString()),
        err.toString());
    // --ca-file alone implies --tls.
    assertEquals(0, run("ping", "-t", target, "--ca-file", caFile.toString()), err.toString());
    assertTrue(out.toString().contains("tls-w FREE"), out.toString());
    assertEquals(List.of("", ""), authorizations);
  }

  @Test
  void tlsWithoutTheCaFileTrustsOnlyTheJdkAuthorities() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    String target = startTlsServer(ca.issueServer(dir, "server"));
    assertEquals(ClientCommands.EXIT_UNREACHABLE, run("ping", "-t", target, "--tls"));
    assertTrue(err.toString().contains("UNAVAILABLE"), err.toString());
    assertTrue(authorizations.isEmpty(), authorizations.toString());
  }

  @Test
  void aCaFileOfAnotherAuthorityIsRefused() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    Path otherCa = TestCertificates.newAuthority("other CA").writeCertificate(
        dir.resolve("other.crt"));
    String target = startTlsServer(ca.issueServer(dir, "server"));
    assertEquals(ClientCommands.EXIT_UNREACHABLE,
        run("ping", "-t", target, "--ca-file", otherCa.toString()));
    assertTrue(err.toString().contains("ping: " + target + ": UNAVAILABLE"), err.toString());
    // The handshake's own reason is shown, not only gRPC's "io exception".
    assertTrue(err.toString().contains("unable to find valid certification path"),
        err.toString());
    assertFalse(err.toString().contains("Channel Pipeline"), err.toString());
  }

  @Test
  void anExpiredServerCertificateIsRefused() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    Path caFile = ca.writeCertificate(dir.resolve("ca.crt"));
    String target = startTlsServer(ca.expired().issueServer(dir, "server"));
    assertEquals(ClientCommands.EXIT_UNREACHABLE,
        run("ping", "-t", target, "--ca-file", caFile.toString()));
    assertTrue(err.toString().contains("UNAVAILABLE"), err.toString());
  }

  @Test
  void plaintextPingAgainstATlsServerFails() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    String target = startTlsServer(ca.issueServer(dir, "server"));
    assertEquals(ClientCommands.EXIT_UNREACHABLE, run("ping", "-t", target));
    assertTrue(err.toString().contains("UNAVAILABLE"), err.toString());
    assertEquals(ClientCommands.EXIT_UNREACHABLE, run("submit", "-t", target, "--repo",
        "https://git.example.test/a.git", "--image", "acme/app:2", "--plain"));
    assertTrue(err.toString().contains("submit: UNAVAILABLE: "), err.toString());
  }

  @Test
  void serverNameIsTheNameTheCertificateMustCarry() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    Path caFile = ca.writeCertificate(dir.resolve("ca.crt"));
    String target = startTlsServer(ca.issueServer(dir, "server", "worker.slipway.test"));
    assertEquals(ClientCommands.EXIT_UNREACHABLE,
        run("ping", "-t", target, "--ca-file", caFile.toString()));
    assertEquals(0, run("ping", "-t", target, "--ca-file", caFile.toString(),
        "--server-name", "worker.slipway.test"), err.toString());
    assertTrue(out.toString().contains("tls-w FREE"), out.toString());
  }

  @Test
  void tokenFileSendsABearerTokenOnEveryCall() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    Path caFile = ca.writeCertificate(dir.resolve("ca.crt"));
    String target = startTlsServer(ca.issueServer(dir, "server"));
    Path tokenFile = dir.resolve("token");
    Files.writeString(tokenFile, "s3cr3t-t0ken.abc\n\n");
    assertEquals(0, run("ping", "-t", target, "--ca-file", caFile.toString(),
        "--token-file", tokenFile.toString()), err.toString());
    assertEquals(ClientCommands.EXIT_UNREACHABLE, run("cancel", "-t", target, "--ca-file",
        caFile.toString(), "--token-file", tokenFile.toString(), "job-1"));
    assertEquals(List.of("Bearer s3cr3t-t0ken.abc", "Bearer s3cr3t-t0ken.abc"), authorizations);
    assertFalse((out.toString() + err).contains("s3cr3t"), out.toString() + err);
  }

  @Test
  void aTokenIsNeverSentOverPlaintext() throws Exception {
    start("worker.pipeline = [test-publish]");
    Path tokenFile = dir.resolve("token");
    Files.writeString(tokenFile, "s3cr3t-t0ken\n");
    assertEquals(WorkerCli.EXIT_CONFIG, run("ping", "-t", "127.0.0.1:" + worker.port(),
        "--token-file", tokenFile.toString()));
    assertTrue(err.toString().contains("--token-file needs TLS"), err.toString());
    assertFalse((out.toString() + err).contains("s3cr3t"), out.toString() + err);
  }

  @Test
  void aMissingEmptyOrMalformedTokenFileIsAUsageErrorNamingIt() throws Exception {
    Path missing = dir.resolve("no-such-token");
    assertEquals(WorkerCli.EXIT_CONFIG,
        run("ping", "-t", "127.0.0.1:1", "--tls", "--token-file", missing.toString()));
    assertTrue(err.toString().contains("--token-file " + missing + ": no such file"),
        err.toString());
    Path empty = Files.writeString(dir.resolve("empty-token"), " \n");
    assertEquals(WorkerCli.EXIT_CONFIG,
        run("submit", "-t", "127.0.0.1:1", "--tls", "--token-file", empty.toString(),
            "--repo", "https://git.example.test/a.git", "--image", "acme/app:2"));
    assertTrue(err.toString().contains("submit: --token-file " + empty + ": the file is empty"),
        err.toString());
    Path twoLines = Files.writeString(dir.resolve("two-tokens"), "s3cr3t-one\ns3cr3t-two\n");
    assertEquals(WorkerCli.EXIT_CONFIG,
        run("cancel", "-t", "127.0.0.1:1", "--tls", "--token-file", twoLines.toString(), "j"));
    assertTrue(err.toString().contains("cancel: --token-file " + twoLines + ": "),
        err.toString());
    assertFalse((out.toString() + err).contains("s3cr3t"), out.toString() + err);
  }

  @Test
  void certFileAndKeyFileGoTogether() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    TestCertificates.Issued client = ca.issueClient(dir, "ci", "CN=ci,O=acme");
    assertEquals(WorkerCli.EXIT_CONFIG,
        run("ping", "-t", "127.0.0.1:1", "--cert-file", client.certFile().toString()));
    assertTrue(err.toString().contains("--cert-file and --key-file go together"),
        err.toString());
    assertEquals(WorkerCli.EXIT_CONFIG,
        run("ping", "-t", "127.0.0.1:1", "--key-file", client.keyFile().toString()));
    Path missingCa = dir.resolve("missing-ca.crt");
    assertEquals(WorkerCli.EXIT_CONFIG,
        run("ping", "-t", "127.0.0.1:1", "--ca-file", missingCa.toString()));
    assertTrue(err.toString().contains("--ca-file " + missingCa + ": no such file"),
        err.toString());
    Path notPem = Files.writeString(dir.resolve("not-pem.crt"), "hello\n");
    assertEquals(WorkerCli.EXIT_CONFIG,
        run("ping", "-t", "127.0.0.1:1", "--ca-file", notPem.toString()));
    assertTrue(err.toString().contains(notPem.toString()), err.toString());
  }

  @Test
  void mutualTlsNeedsTheClientCertificate() throws Exception {
    TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
    Path caFile = ca.writeCertificate(dir.resolve("ca.crt"));
    TestCertificates.Issued server = ca.issueServer(dir, "server");
    TestCertificates.Issued client = ca.issueClient(dir, "ci", "CN=ci,O=acme",
        "spiffe://acme.test/ci");
    String target = startTlsServer(TlsServerCredentials.newBuilder()
        .keyManager(server.certFile().toFile(), server.keyFile().toFile())
        .trustManager(caFile.toFile())
        .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE)
        .build());
    assertEquals(0, run("ping", "-t", target, "--ca-file", caFile.toString(),
        "--cert-file", client.certFile().toString(), "--key-file", client.keyFile().toString()),
        err.toString());
    assertTrue(out.toString().contains("tls-w FREE"), out.toString());
    assertEquals(List.of(client.subject()), clientSubjects);
    assertEquals(ClientCommands.EXIT_UNREACHABLE,
        run("ping", "-t", target, "--ca-file", caFile.toString()));
    assertTrue(err.toString().contains("UNAVAILABLE"), err.toString());
    assertEquals(1, clientSubjects.size(), clientSubjects.toString());
  }

  @Test
  void submitFollowsTheJobAndPrintsTheImage() throws Exception {
    start("worker.pipeline = [test-publish, test-consume]");
    int code = run("submit", "--target", "127.0.0.1:" + worker.port(), "--repo",
        "https://git.example.test/a.git", "--image", "acme/app:2", "--plain");
    String text = out.toString();
    assertEquals(0, code, text + err);
    assertTrue(text.contains("> test-publish"), text);
    assertTrue(text.contains("[test-consume] logging in as AWS with ****"), text);
    assertTrue(text.contains("image:  registry.test:5000/acme/app:2"), text);
    assertTrue(text.contains("digest: sha256:0123456789abcdef"), text);
  }

  @Test
  void submitSendsRefCommitExtraTagsAndStageOptions() throws Exception {
    start("worker.pipeline = [test-options, test-push]\n"
        + "worker.stages.test-push.registry = \"registry.test:5000\"");
    int code = run("submit", "-t", "127.0.0.1:" + worker.port(), "--repo",
        "https://git.example.test/a.git", "--ref", "refs/pull/42/merge", "--commit",
        "0123456789abcdef0123456789abcdef01234567", "--image", "acme/app:2", "--tag", "main",
        "--tag", "pr-42", "--option", "test-options.count=2", "--plain");
    String text = out.toString();
    assertEquals(0, code, text + err);
    assertTrue(text.contains("[test-options] option count=2"), text);
    assertTrue(text.contains("image:  registry.test:5000/acme/app:main"), text);
    assertTrue(text.contains("image:  registry.test:5000/acme/app:pr-42"), text);
  }

  @Test
  void submitExitsNonZeroWhenTheJobFails() throws Exception {
    start("worker.pipeline = [test-fail]");
    int code = run("submit", "-t", "127.0.0.1:" + worker.port(), "--repo",
        "https://git.example.test/a.git", "--image", "acme/app:2", "--plain");
    assertEquals(ClientCommands.EXIT_JOB_FAILED, code);
    assertTrue(out.toString().contains("failed in stage test-fail (test.failed)"), out.toString());
  }

  @Test
  void submitReportsARefusedRequest() throws Exception {
    start("worker.pipeline = [test-publish]");
    int code = run("submit", "-t", "127.0.0.1:" + worker.port(), "--repo", "",
        "--image", "acme/app:2");
    assertEquals(ClientCommands.EXIT_UNREACHABLE, code);
    assertTrue(err.toString().contains("INVALID_ARGUMENT") && err.toString().contains("repo_url"),
        err.toString());
  }

  @Test
  void pingAndCancel() throws Exception {
    start("worker.pipeline = [test-publish]");
    assertEquals(0, run("ping", "-t", "127.0.0.1:" + worker.port()));
    assertTrue(out.toString().contains("cli-w FREE"), out.toString());
    assertEquals(ClientCommands.EXIT_JOB_FAILED, run("cancel", "-t", "127.0.0.1:" + worker.port(),
        "no-such-job"));
  }

  @Test
  void onATerminalTheLogLineUpdatesInPlace() {
    StringWriter text = new StringWriter();
    ClientCommands.ProgressPrinter printer =
        new ClientCommands.ProgressPrinter(new PrintWriter(text), true);
    printer.stageStarted("j1", "git");
    printer.log("git", "Receiving objects: 10%");
    printer.log("git", "Receiving objects: 90%");
    printer.stageFinished(dev.slipway.proto.v1.StageResult.newBuilder().setStage("git")
        .setSuccess(true).setDurationMs(12).build());
    assertEquals("> git  (job j1)\n"
        + "\r\033[2K  | Receiving objects: 10%"
        + "\r\033[2K  | Receiving objects: 90%"
        + "\r\033[2K  ok   git (12 ms)\n", text.toString().replace(System.lineSeparator(), "\n"));
  }

  @Test
  void unreachableWorkerIsSaidSo() {
    assertEquals(ClientCommands.EXIT_UNREACHABLE, run("ping", "-t", "127.0.0.1:1"));
    assertTrue(err.toString().contains("UNAVAILABLE"), err.toString());
  }
}

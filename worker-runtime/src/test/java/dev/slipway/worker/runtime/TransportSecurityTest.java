package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.PingRequest;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.logging.Logging;
import dev.slipway.worker.runtime.registration.Registrar;
import dev.slipway.worker.testkit.TestCertificates;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsServerCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.X509Certificate;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS and mutual TLS over real sockets: what a plaintext client, a client without the CA, a
 * client with a certificate of another CA get; certificate rotation without a restart; start-up
 * errors for broken files; registration with an orchestrator that requires TLS.
 */
class TransportSecurityTest {
  @TempDir Path dir;
  TestCertificates.Authority ca;
  Path caFile;
  TestCertificates.Issued server;
  Worker worker;
  ManagedChannel channel;
  Server orchestrator;

  @BeforeEach
  void certificates() {
    ca = TestCertificates.newAuthority("slipway test CA");
    caFile = ca.writeCertificate(dir.resolve("ca.pem"));
    server = ca.issueServer(dir, "worker");
  }

  @AfterEach
  void stop() throws Exception {
    TlsClients.close(channel);
    TestWorkers.close(worker, null);
    if (orchestrator != null) {
      orchestrator.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private String tls(String extra) {
    return "worker.pipeline = [test-publish]\n"
        + "worker.tls { cert-file = \"" + server.certFile() + "\", key-file = \""
        + server.keyFile() + "\", reload-interval = 100ms }\n" + extra;
  }

  @Test
  void aTlsClientWithTheCaIsServedAndAPlaintextClientIsNot() throws Exception {
    worker = TestWorkers.start(dir, tls(""));
    channel = TlsClients.channel(worker.port(), caFile, null);
    assertEquals(worker.settings().id(), TlsClients.stub(channel, null)
        .ping(PingRequest.getDefaultInstance()).getWorkerId());
    // Health and reflection are behind the same TLS: nothing is served in plaintext.
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel)
        .check(HealthCheckRequest.getDefaultInstance()).getStatus());

    ManagedChannel plain = TestWorkers.channel(worker);
    try {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> TestWorkers.ping(plain));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
      StatusRuntimeException health = assertThrows(StatusRuntimeException.class,
          () -> HealthGrpc.newBlockingStub(plain).withDeadlineAfter(2, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance()));
      assertEquals(Status.Code.UNAVAILABLE, health.getStatus().getCode());
    } finally {
      TlsClients.close(plain);
    }

    // A client that trusts another CA refuses the worker's certificate.
    Path otherCa = TestCertificates.newAuthority("other CA").writeCertificate(dir.resolve("o.pem"));
    ManagedChannel distrustful = TlsClients.channel(worker.port(), otherCa, null);
    try {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> TlsClients.stub(distrustful, null).ping(PingRequest.getDefaultInstance()));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    } finally {
      TlsClients.close(distrustful);
    }
  }

  @Test
  void mutualTlsRefusesClientsWithoutACertificateOfTheClientCa() throws Exception {
    TestCertificates.Authority clientCa = TestCertificates.newAuthority("client CA");
    Path clientCaFile = clientCa.writeCertificate(dir.resolve("client-ca.pem"));
    worker = TestWorkers.start(dir, tls("worker.tls.client-ca-file = \"" + clientCaFile + "\""));

    channel = TlsClients.channel(worker.port(), caFile,
        clientCa.issueClient(dir, "ci", "CN=ci,O=acme"));
    assertEquals(worker.settings().id(), TlsClients.stub(channel, null)
        .ping(PingRequest.getDefaultInstance()).getWorkerId());

    TestCertificates.Authority rogue = TestCertificates.newAuthority("rogue CA");
    for (TestCertificates.Issued cert : new TestCertificates.Issued[] {
        null, rogue.issueClient(dir, "rogue", "CN=ci,O=acme"), ca.issueClient(dir, "srv", "CN=x")}) {
      ManagedChannel refused = TlsClients.channel(worker.port(), caFile, cert);
      try {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> TlsClients.stub(refused, null).ping(PingRequest.getDefaultInstance()));
        assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
      } finally {
        TlsClients.close(refused);
      }
    }
    // Refused in the handshake itself, not by a later check: a raw TLS socket without a
    // client certificate cannot complete it.
    assertTrue(handshakeFails(worker.port(), ca));
  }

  @Test
  void theHealthOnlyListenerServesHealthInPlaintextAndNothingElse() throws Exception {
    TestCertificates.Authority clientCa = TestCertificates.newAuthority("client CA");
    Path clientCaFile = clientCa.writeCertificate(dir.resolve("client-ca.pem"));
    worker = TestWorkers.start(dir, tls("worker.tls.client-ca-file = \"" + clientCaFile + "\"\n"
        + "worker.health { enabled = true, bind-address = 127.0.0.1, port = 0 }\n"));
    ManagedChannel probe = io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
        .forAddress("127.0.0.1", worker.healthPort().orElseThrow()).usePlaintext().build();
    try {
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, HealthGrpc.newBlockingStub(probe)
          .withDeadlineAfter(5, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance())
          .getStatus());
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> TestWorkers.ping(probe));
      assertEquals(Status.Code.UNIMPLEMENTED, e.getStatus().getCode(), "no JobService there");
      worker.stop();
      worker = null;
      // Stopped with the worker: nothing listens there any more.
      assertThrows(StatusRuntimeException.class, () -> HealthGrpc.newBlockingStub(probe)
          .withDeadlineAfter(2, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance()));
    } finally {
      TlsClients.close(probe);
    }
  }

  @Test
  void aRotatedCertificateIsServedWithoutARestart() throws Exception {
    Path cert = dir.resolve("live-cert.pem");
    Path key = dir.resolve("live-key.pem");
    Files.copy(server.certFile(), cert);
    Files.copy(server.keyFile(), key);
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish]\n"
        + "worker.tls { cert-file = \"" + cert + "\", key-file = \"" + key
        + "\", reload-interval = 100ms }\n");
    X509Certificate before = servedCertificate(worker.port(), ca);

    TestCertificates.Authority next = TestCertificates.newAuthority("next CA");
    TestCertificates.Issued rotated = next.issueServer(dir, "rotated");
    // A rotation caught half-way (the new certificate, the old key), then a broken file: the
    // working credentials stay in use.
    Files.copy(rotated.certFile(), cert, StandardCopyOption.REPLACE_EXISTING);
    touch(cert, 2000);
    Thread.sleep(600);
    assertEquals(before, servedCertificate(worker.port(), ca), "a half rotation is not used");
    Files.writeString(key, "");
    touch(key, 3000);
    Thread.sleep(600);
    assertEquals(before, servedCertificate(worker.port(), ca), "an empty key is not used");
    // The other half arrives.
    Files.copy(rotated.keyFile(), key, StandardCopyOption.REPLACE_EXISTING);
    touch(key, 4000);
    X509Certificate after = null;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < deadline) {
      after = servedCertificate(worker.port(), next);
      if (after != null) {
        break;
      }
      Thread.sleep(100);
    }
    assertTrue(before != null, "the first certificate is served");
    assertTrue(after != null, "the rotated certificate is served");
    assertEquals(rotated.certificate(), after);
    Path nextCa = next.writeCertificate(dir.resolve("next-ca.pem"));
    channel = TlsClients.channel(worker.port(), nextCa, null);
    assertEquals(worker.settings().id(), TlsClients.stub(channel, null)
        .ping(PingRequest.getDefaultInstance()).getWorkerId());
  }

  @Test
  void brokenCertificateFilesAreStartUpErrorsNamingThem() throws Exception {
    Path garbage = Files.writeString(dir.resolve("garbage.pem"), "not a certificate\n");
    Path unreadable = Files.writeString(dir.resolve("unreadable.pem"), "x");
    Files.setPosixFilePermissions(unreadable, PosixFilePermissions.fromString("---------"));
    TestCertificates.Issued other = ca.issueServer(dir, "other");

    StartupException e = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-publish]\n"
            + "worker.tls { cert-file = \"" + dir.resolve("missing.pem") + "\", key-file = \""
            + server.keyFile() + "\", client-ca-file = \"" + garbage + "\" }\n"
            + "worker.orchestrator { address = \"127.0.0.1:1\", tls { enabled = true,"
            + " ca-file = \"" + caFile + "\", cert-file = \"" + server.certFile()
            + "\", key-file = \"" + other.keyFile() + "\" } }\n"));
    String all = String.join("\n", e.problems());
    assertTrue(all.contains("worker.tls.cert-file " + dir.resolve("missing.pem")
        + " cannot be read (no such file)"), all);
    assertTrue(all.contains("worker.tls.client-ca-file " + garbage + " holds no PEM certificate"),
        all);
    assertTrue(all.contains("worker.orchestrator.tls.key-file " + other.keyFile()
        + " is not the key of the certificate"), all);

    if (!"root".equals(System.getProperty("user.name"))) {
      StartupException u = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
          "worker.pipeline = [test-publish]\nworker.tls { cert-file = \"" + unreadable
              + "\", key-file = \"" + server.keyFile() + "\" }\n"));
      assertTrue(String.join("\n", u.problems()).contains("permission denied"), u.toString());
    }
    StartupException half = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-publish]\nworker.tls.cert-file = \"" + server.certFile()
            + "\"\n"));
    assertTrue(half.getMessage().contains("cert-file and key-file go together"), half.toString());
    StartupException expired = assertThrows(StartupException.class, () -> {
      TestCertificates.Issued old = ca.expired().issueServer(dir, "old");
      TestWorkers.prepare(dir, "worker.pipeline = [test-publish]\nworker.tls { cert-file = \""
          + old.certFile() + "\", key-file = \"" + old.keyFile() + "\" }\n");
    });
    assertTrue(expired.getMessage().contains("is not valid now"), expired.toString());
  }

  @Test
  void aWorkerThatOtherHostsCanReachRefusesToStartWithoutTlsAndCallers() throws Exception {
    StartupException e = assertThrows(StartupException.class, () -> Worker.prepare(
        TestWorkers.options(dir, "worker.pipeline = [test-publish]\n"
            + "worker.bind-address = 0.0.0.0\n", java.util.Map.of())));
    String all = String.join("\n", e.problems());
    assertTrue(all.contains("worker.bind-address = \"0.0.0.0\" serves other hosts"), all);
    assertTrue(all.contains("worker.insecure = true"), all);

    // Told it is insecure, it starts, and says so.
    ByteArrayOutputStream logs = new ByteArrayOutputStream();
    Logging.configure("text", "INFO", logs);
    try {
      worker = Worker.prepare(TestWorkers.options(dir, "worker.pipeline = [test-publish]\n"
          + "worker.bind-address = 0.0.0.0\nworker.insecure = true\n", java.util.Map.of()));
      worker.start();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (!logs.toString(StandardCharsets.UTF_8).contains("INSECURE")
          && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertTrue(logs.toString(StandardCharsets.UTF_8).contains("WARN"), logs.toString());
      assertTrue(logs.toString(StandardCharsets.UTF_8).contains("INSECURE: worker.insecure"
          + " = true"), logs.toString());
    } finally {
      Logging.configure("text", "INFO");
    }
  }

  @Test
  void registersOverTlsAndKeepsRetryingWithAClearMessageWhenTheCaIsWrong() throws Exception {
    RegistrationTest.FakeOrchestrator fake = new RegistrationTest.FakeOrchestrator(0);
    TestCertificates.Issued orchestratorCert = ca.issueServer(dir, "orchestrator", "localhost");
    TestCertificates.Authority workerCa = TestCertificates.newAuthority("worker client CA");
    Path workerCaFile = workerCa.writeCertificate(dir.resolve("worker-ca.pem"));
    TestCertificates.Issued workerClient =
        workerCa.issueClient(dir, "worker-client", "CN=worker-1");
    // The orchestrator requires TLS and a client certificate of its CA.
    ServerCredentials creds = TlsServerCredentials.newBuilder()
        .keyManager(orchestratorCert.certFile().toFile(), orchestratorCert.keyFile().toFile())
        .trustManager(workerCaFile.toFile())
        .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE).build();
    orchestrator = Grpc.newServerBuilderForPort(0, creds).addService(fake).build().start();

    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish]\n"
        + "worker.orchestrator { address = \"localhost:" + orchestrator.getPort() + "\","
        + " retry-initial-backoff = 50ms, retry-max-backoff = 200ms,"
        + " tls { enabled = true, ca-file = \"" + caFile + "\", cert-file = \""
        + workerClient.certFile() + "\", key-file = \"" + workerClient.keyFile() + "\" } }\n");
    awaitState(worker, Registrar.State.REGISTERED);
    assertEquals(1, fake.calls.size());
    worker.stop();
    worker = null;

    // With a CA that did not sign the orchestrator's certificate: refused, said, retried.
    Path wrongCa = TestCertificates.newAuthority("wrong CA").writeCertificate(dir.resolve("w.pem"));
    ByteArrayOutputStream logs = new ByteArrayOutputStream();
    Logging.configure("text", "INFO", logs);
    try {
      worker = TestWorkers.start(dir, "worker.pipeline = [test-publish]\n"
          + "worker.orchestrator { address = \"localhost:" + orchestrator.getPort() + "\","
          + " retry-initial-backoff = 50ms, retry-max-backoff = 100ms,"
          + " tls { enabled = true, ca-file = \"" + wrongCa + "\", cert-file = \""
          + workerClient.certFile() + "\", key-file = \"" + workerClient.keyFile() + "\" } }\n");
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (worker.registrar().orElseThrow().attempts() < 3 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertTrue(worker.registrar().orElseThrow().attempts() >= 3, "keeps retrying");
      assertEquals(Registrar.State.REGISTERING, worker.registrar().orElseThrow().state());
      assertEquals(1, fake.calls.size(), "nothing reached the orchestrator");
      String log = logs.toString(StandardCharsets.UTF_8);
      assertTrue(log.contains("TLS handshake with the orchestrator failed"), log);
      assertTrue(log.contains("worker.orchestrator.tls.ca-file"), log);
    } finally {
      Logging.configure("text", "INFO");
    }
  }

  private static void touch(Path file, long aheadMillis) throws java.io.IOException {
    Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.fromMillis(
        System.currentTimeMillis() + aheadMillis));
  }

  private static void awaitState(Worker worker, Registrar.State state) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (worker.registrationState().orElse(null) != state && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertEquals(state, worker.registrationState().orElse(null));
  }

  /** The certificate the worker presents, if it chains to {@code trusted}; else null. */
  private static X509Certificate servedCertificate(int port, TestCertificates.Authority trusted)
      throws Exception {
    try (SSLSocket socket = (SSLSocket) context(trusted).getSocketFactory()
        .createSocket("127.0.0.1", port)) {
      socket.setSoTimeout(5000);
      socket.setEnabledProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
      javax.net.ssl.SSLParameters params = socket.getSSLParameters();
      params.setApplicationProtocols(new String[] {"h2"});
      socket.setSSLParameters(params);
      socket.startHandshake();
      return (X509Certificate) socket.getSession().getPeerCertificates()[0];
    } catch (javax.net.ssl.SSLException e) {
      return null;
    }
  }

  /** Whether a TLS handshake without a client certificate fails. */
  private static boolean handshakeFails(int port, TestCertificates.Authority trusted)
      throws Exception {
    try (SSLSocket socket = (SSLSocket) context(trusted).getSocketFactory()
        .createSocket("127.0.0.1", port)) {
      socket.setSoTimeout(5000);
      javax.net.ssl.SSLParameters params = socket.getSSLParameters();
      params.setApplicationProtocols(new String[] {"h2"});
      socket.setSSLParameters(params);
      socket.startHandshake();
      // TLS 1.3 reports a refused client certificate on the first read.
      socket.getOutputStream().write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(
          StandardCharsets.US_ASCII));
      socket.getOutputStream().flush();
      return socket.getInputStream().read() < 0;
    } catch (java.io.IOException e) {
      return true;
    }
  }

  private static SSLContext context(TestCertificates.Authority trusted) throws Exception {
    java.security.KeyStore store = java.security.KeyStore.getInstance("PKCS12");
    store.load(null, null);
    store.setCertificateEntry("ca", trusted.certificate());
    TrustManagerFactory tmf =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(store);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(null, tmf.getTrustManagers(), null);
    return context;
  }
}

package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The default configuration, https only, against the git server behind TLS: a self-signed
 * certificate for 127.0.0.1 that the test JVM trusts, and certificate checks left on.
 */
class GitHttpsTest {
  private static final String TOKEN = "https-test-token-0123456789";

  @TempDir static Path dir;
  private static GitRepos repos;
  private static GitHttpServer server;
  private static TlsProxy proxy;
  private static TlsProxy untrustedProxy;
  private static SSLSocketFactory previous;

  @TempDir Path workspace;

  @BeforeAll
  static void start() throws Exception {
    repos = new GitRepos(dir.resolve("repos"));
    repos.repository("app.git").file("Dockerfile", "FROM scratch\n").commit("initial").build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();

    SSLContext tls = tls("trusted");
    untrustedProxy = new TlsProxy(tls("untrusted"), server.port());
    proxy = new TlsProxy(tls, server.port());
    // The client side trusts the test certificate the way a worker trusts a public CA.
    previous = HttpsURLConnection.getDefaultSSLSocketFactory();
    HttpsURLConnection.setDefaultSSLSocketFactory(tls.getSocketFactory());
  }

  /** A TLS context whose key and only trusted certificate are a new self-signed one for 127.0.0.1. */
  private static SSLContext tls(String name) throws Exception {
    Path keystore = dir.resolve(name + ".p12");
    Process keytool =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
                "-genkeypair", "-alias", name, "-keyalg", "RSA", "-keysize", "2048",
                "-dname", "CN=127.0.0.1", "-ext", "san=ip:127.0.0.1", "-validity", "2",
                "-storetype", "PKCS12", "-keystore", keystore.toString(),
                "-storepass", "changeit", "-keypass", "changeit")
            .redirectErrorStream(true)
            .start();
    String output = new String(keytool.getInputStream().readAllBytes());
    assertTrue(keytool.waitFor(60, TimeUnit.SECONDS) && keytool.exitValue() == 0, output);
    KeyStore store = KeyStore.getInstance("PKCS12");
    try (InputStream in = java.nio.file.Files.newInputStream(keystore)) {
      store.load(in, "changeit".toCharArray());
    }
    KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    keys.init(store, "changeit".toCharArray());
    TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    trust.init(store);
    SSLContext tls = SSLContext.getInstance("TLS");
    tls.init(keys.getKeyManagers(), trust.getTrustManagers(), null);
    return tls;
  }

  @AfterAll
  static void stop() throws Exception {
    HttpsURLConnection.setDefaultSSLSocketFactory(previous);
    proxy.close();
    untrustedProxy.close();
    server.close();
  }

  @Test
  void clonesOverHttpsWithTheDefaultConfiguration() throws Exception {
    String url = "https://127.0.0.1:" + proxy.port() + "/app.git";
    RecordingJobContext ctx = context(workspace, url, "", TOKEN);
    int before = server.requests().size();

    run(GitTestSupport.referenceStage(), ctx);

    assertEquals(repos.revParse("app.git", "HEAD"), ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
    List<GitHttpServer.Request> requests = server.requests().subList(before, server.requests().size());
    assertTrue(requests.stream().anyMatch(r -> r.user().equals("x-access-token")), requests::toString);
  }

  @Test
  void untrustedCertificateIsRefused() throws Exception {
    String url = "https://127.0.0.1:" + untrustedProxy.port() + "/app.git";
    RecordingJobContext ctx = context(workspace, url, "", TOKEN);
    int before = server.requests().size();

    StageException e =
        assertThrows(
            StageException.class,
            () -> run(GitTestSupport.referenceStage(), ctx));

    assertEquals("git.clone-failed", e.code());
    assertTrue(e.retryable());
    assertTrue(e.getMessage().startsWith("cloning " + url + " failed: "), e.getMessage());
    assertTrue(e.getMessage().contains("TLS with the server failed ("), e.getMessage());
    assertTrue(e.getMessage().contains("certificate that the worker's Java trust store accepts"), e.getMessage());
    // JGit offers to trust the server anyway; the stage's credentials provider never agrees.
    assertEquals(before, server.requests().size(), "a request passed the bad certificate");
  }

  /** Terminates TLS and pipes the bytes to a plain HTTP port. */
  private static final class TlsProxy implements AutoCloseable {
    private final ServerSocket socket;

    TlsProxy(SSLContext tls, int backendPort) throws Exception {
      socket = tls.getServerSocketFactory().createServerSocket(0, 50, GitStageTest.loopback());
      Thread acceptor =
          new Thread(
              () -> {
                while (!socket.isClosed()) {
                  try {
                    Socket client = socket.accept();
                    Socket backend = new Socket(GitStageTest.loopback(), backendPort);
                    pipe(client, backend);
                    pipe(backend, client);
                  } catch (Exception e) {
                    // Closed, or a failed handshake: the client sees it.
                  }
                }
              },
              "tls-proxy");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    int port() {
      return socket.getLocalPort();
    }

    private static void pipe(Socket from, Socket to) {
      Thread pump =
          new Thread(
              () -> {
                try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                  in.transferTo(out);
                } catch (IOException e) {
                  // One side closed.
                } finally {
                  close(from);
                  close(to);
                }
              },
              "tls-proxy-pump");
      pump.setDaemon(true);
      pump.start();
    }

    private static void close(Socket s) {
      try {
        s.close();
      } catch (IOException e) {
        // Already closed.
      }
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }
}

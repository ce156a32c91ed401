package dev.slipway.worker.runtime.security;

import dev.slipway.worker.runtime.config.ConfigProblems;
import dev.slipway.worker.runtime.config.SecuritySettings.ClientTls;
import dev.slipway.worker.runtime.config.SecuritySettings.ServerTls;
import io.grpc.ChannelCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker's TLS: the server's credentials (with mutual TLS when a client CA is set) and those
 * of the channel to the orchestrator. Every file is checked at start-up, each problem naming the
 * file; afterwards the files are re-read when they change (grpc-java's advanced TLS managers), so
 * certificates rotate without a restart. A file that is broken after a change is not used.
 */
public final class TransportSecurity implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(TransportSecurity.class);

  private final ScheduledExecutorService reloader;
  private final List<ScheduledFuture<?>> watches = new CopyOnWriteArrayList<>();

  public TransportSecurity() {
    this.reloader = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "tls-reload");
      t.setDaemon(true);
      return t;
    });
  }

  /** Checks the server's files, adding a problem per unusable one; true when all are usable. */
  public static boolean check(ServerTls tls, ConfigProblems problems) {
    boolean ok = checkPair(tls.certFile(), tls.keyFile(), "worker.tls", problems).isPresent();
    if (tls.clientCaFile().isPresent()) {
      ok &= checkCertificates(tls.clientCaFile().get(), "worker.tls.client-ca-file", problems)
          .isPresent();
    }
    return ok;
  }

  /** Checks the orchestrator channel's files; true when all are usable. */
  public static boolean check(ClientTls tls, ConfigProblems problems) {
    boolean ok = true;
    if (tls.caFile().isPresent()) {
      ok = checkCertificates(tls.caFile().get(), "worker.orchestrator.tls.ca-file", problems)
          .isPresent();
    }
    if (tls.certFile().isPresent() && tls.keyFile().isPresent()) {
      ok &= checkPair(tls.certFile().get(), tls.keyFile().get(), "worker.orchestrator.tls",
          problems).isPresent();
    }
    return ok;
  }

  /** Server credentials that follow changes of the files. */
  public ServerCredentials server(ServerTls tls) throws IOException, GeneralSecurityException {
    TlsServerCredentials.Builder builder = TlsServerCredentials.newBuilder()
        .keyManager(keyManager(tls.certFile(), tls.keyFile(), tls.reloadInterval(), "worker.tls"));
    if (tls.clientCaFile().isPresent()) {
      // Clients are identified by their certificate, not by a host name.
      AdvancedTlsX509TrustManager trust = AdvancedTlsX509TrustManager.newBuilder()
          .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_ONLY_VERIFICATION)
          .build();
      Path ca = tls.clientCaFile().get();
      FileLoad load = () -> trust.updateTrustCredentials(authorities(ca, "worker.tls.client-ca-file"));
      load.run();
      watch(tls.reloadInterval(), "worker.tls.client-ca-file", List.of(ca), load);
      builder.trustManager(trust).clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
    }
    return builder.build();
  }

  /** Channel credentials that verify the server's certificate and host name, always. */
  public ChannelCredentials client(ClientTls tls) throws IOException, GeneralSecurityException {
    AdvancedTlsX509TrustManager trust = AdvancedTlsX509TrustManager.newBuilder()
        .setVerification(
            AdvancedTlsX509TrustManager.Verification.CERTIFICATE_AND_HOST_NAME_VERIFICATION)
        .build();
    if (tls.caFile().isPresent()) {
      Path ca = tls.caFile().get();
      FileLoad load =
          () -> trust.updateTrustCredentials(authorities(ca, "worker.orchestrator.tls.ca-file"));
      load.run();
      watch(tls.reloadInterval(), "worker.orchestrator.tls.ca-file", List.of(ca), load);
    } else {
      trust.useSystemDefaultTrustCerts();
    }
    TlsChannelCredentials.Builder builder = TlsChannelCredentials.newBuilder().trustManager(trust);
    if (tls.certFile().isPresent() && tls.keyFile().isPresent()) {
      builder.keyManager(keyManager(tls.certFile().get(), tls.keyFile().get(),
          tls.reloadInterval(), "worker.orchestrator.tls"));
    }
    return builder.build();
  }

  private AdvancedTlsX509KeyManager keyManager(Path cert, Path key, Duration interval,
      String block) throws IOException, GeneralSecurityException {
    AdvancedTlsX509KeyManager keys = new AdvancedTlsX509KeyManager();
    // Checked as at start-up before use: a half-rotated pair (the new certificate, the old key),
    // an expired or an empty file never replaces credentials that work.
    FileLoad load = () -> {
      ConfigProblems problems = new ConfigProblems();
      Optional<Identity> identity = checkPair(cert, key, block, problems);
      if (identity.isEmpty()) {
        throw new GeneralSecurityException(String.join("; ", problems.asList()));
      }
      keys.updateIdentityCredentials(identity.get().chain(), identity.get().key());
    };
    load.run();
    watch(interval, block + ".cert-file and key-file", List.of(cert, key), load);
    return keys;
  }

  /** Loads files into a TLS manager; the manager keeps what it had when this throws. */
  private interface FileLoad {
    void run() throws IOException, GeneralSecurityException;
  }

  /**
   * Re-loads {@code files} whenever one of them changes (time stamp or size). grpc-java's own
   * reloading polls once a minute at the most often; this one polls at {@code interval}.
   */
  private void watch(Duration interval, String what, List<Path> files, FileLoad load) {
    // [0]: the stamps now in use; [1]: the stamps last warned about.
    String[] seen = {stamps(files), ""};
    watches.add(reloader.scheduleWithFixedDelay(() -> {
      String now = stamps(files);
      if (now.equals(seen[0])) {
        return;
      }
      try {
        load.run();
        seen[0] = now;
        LOG.info("{} changed on disk; the new files are in use", what);
      } catch (IOException | GeneralSecurityException | RuntimeException e) {
        // Half-rotated or broken: keep what works, and try again on every poll, since the
        // other half of a rotation may come next; say so once per state of the files.
        if (!now.equals(seen[1])) {
          seen[1] = now;
          LOG.warn("{} changed on disk but cannot be used ({}); the previous files stay in use",
              what, e.getMessage());
        }
      }
    }, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS));
  }

  private static String stamps(List<Path> files) {
    StringBuilder b = new StringBuilder();
    for (Path f : files) {
      try {
        b.append(Files.getLastModifiedTime(f).toMillis()).append('/').append(Files.size(f));
      } catch (IOException e) {
        b.append("missing");
      }
      b.append(';');
    }
    return b.toString();
  }

  @Override
  public void close() {
    watches.forEach(w -> w.cancel(false));
    watches.clear();
    reloader.shutdownNow();
  }

  // --- start-up checks --------------------------------------------------------------------------

  /** A certificate chain and its key. */
  private record Identity(X509Certificate[] chain, PrivateKey key) {}

  /** CA certificates for a trust manager; throws when the file holds none. */
  private static X509Certificate[] authorities(Path file, String key)
      throws GeneralSecurityException {
    ConfigProblems problems = new ConfigProblems();
    Optional<List<X509Certificate>> certs = checkCertificates(file, key, problems);
    if (certs.isEmpty()) {
      throw new GeneralSecurityException(String.join("; ", problems.asList()));
    }
    return certs.get().toArray(X509Certificate[]::new);
  }

  private static Optional<Identity> checkPair(Path certFile, Path keyFile, String block,
      ConfigProblems problems) {
    Optional<List<X509Certificate>> chain =
        checkCertificates(certFile, block + ".cert-file", problems);
    Optional<PrivateKey> key = readKey(keyFile, block + ".key-file", problems);
    if (chain.isEmpty() || key.isEmpty()) {
      return Optional.empty();
    }
    X509Certificate leaf = chain.get().get(0);
    if (!belongTogether(key.get(), leaf.getPublicKey())) {
      problems.add(block + ".key-file " + keyFile + " is not the key of the certificate in "
          + block + ".cert-file " + certFile + "; give the key the certificate was issued for");
      return Optional.empty();
    }
    try {
      leaf.checkValidity();
    } catch (CertificateException e) {
      problems.add(block + ".cert-file " + certFile + ": the certificate "
          + leaf.getSubjectX500Principal() + " is not valid now (valid " + leaf.getNotBefore()
          + " to " + leaf.getNotAfter() + ")");
      return Optional.empty();
    }
    return Optional.of(new Identity(chain.get().toArray(X509Certificate[]::new), key.get()));
  }

  private static Optional<List<X509Certificate>> checkCertificates(Path file, String key,
      ConfigProblems problems) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      problems.add(key + " " + file + " cannot be read (" + reason(e) + "); it must be a PEM"
          + " file of certificates");
      return Optional.empty();
    }
    try {
      Collection<? extends java.security.cert.Certificate> certs =
          CertificateFactory.getInstance("X.509").generateCertificates(
              new ByteArrayInputStream(bytes));
      List<X509Certificate> x509 = new ArrayList<>();
      for (java.security.cert.Certificate c : certs) {
        x509.add((X509Certificate) c);
      }
      if (x509.isEmpty()) {
        throw new CertificateException("no certificate in it");
      }
      return Optional.of(x509);
    } catch (CertificateException | ClassCastException e) {
      problems.add(key + " " + file + " holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"
          + ": " + e.getMessage());
      return Optional.empty();
    }
  }

  private static Optional<PrivateKey> readKey(Path file, String key, ConfigProblems problems) {
    String pem;
    try {
      pem = Files.readString(file, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      problems.add(key + " " + file + " cannot be read (" + reason(e) + "); it must be a PEM"
          + " PKCS#8 private key");
      return Optional.empty();
    }
    try {
      // grpc-java reads keys as PKCS#8 ("BEGIN PRIVATE KEY"); check with the reader it uses.
      return Optional.of(io.grpc.util.CertificateUtils.getPrivateKey(
          new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII))));
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      problems.add(key + " " + file + " holds no PEM PKCS#8 private key (\"-----BEGIN PRIVATE"
          + " KEY-----\"; convert with openssl pkcs8 -topk8 -nocrypt)");
      return Optional.empty();
    }
  }

  /** Whether a private key belongs to a public key: a signature made with one verifies. */
  private static boolean belongTogether(PrivateKey privateKey, PublicKey publicKey) {
    String algorithm = switch (publicKey.getAlgorithm()) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      case "Ed25519", "EdDSA" -> "Ed25519";
      default -> null;
    };
    if (algorithm == null || !privateKey.getAlgorithm().equals(publicKey.getAlgorithm())) {
      return algorithm == null; // an algorithm we cannot test is left to the handshake
    }
    try {
      byte[] data = "slipway".getBytes(StandardCharsets.US_ASCII);
      Signature signer = Signature.getInstance(algorithm);
      signer.initSign(privateKey);
      signer.update(data);
      byte[] signature = signer.sign();
      Signature verifier = Signature.getInstance(algorithm);
      verifier.initVerify(publicKey);
      verifier.update(data);
      return verifier.verify(signature);
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  private static String reason(IOException e) {
    return e instanceof java.nio.file.NoSuchFileException ? "no such file"
        : e instanceof java.nio.file.AccessDeniedException ? "permission denied"
        : e.getClass().getSimpleName();
  }
}

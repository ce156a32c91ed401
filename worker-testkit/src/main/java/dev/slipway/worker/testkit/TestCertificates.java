package dev.slipway.worker.testkit;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.DERUTF8String;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.util.IPAddress;
import org.bouncycastle.util.io.pem.PemObject;
import org.bouncycastle.util.io.pem.PemWriter;

/**
 * Certificates for TLS tests, made in memory and written as PEM files: a self-signed
 * {@linkplain Authority certificate authority} that issues server and client certificates.
 *
 * <pre>{@code
 * TestCertificates.Authority ca = TestCertificates.newAuthority("slipway test CA");
 * Path caFile = ca.writeCertificate(dir.resolve("ca.crt"));
 * TestCertificates.Issued server = ca.issueServer(dir, "server");          // 127.0.0.1, localhost
 * TestCertificates.Issued client = ca.issueClient(dir, "ci", "CN=ci,O=acme",
 *     "spiffe://acme.test/ci");
 * }</pre>
 *
 * <p>Keys are EC P-256, made by the JDK's own provider; certificates are signed with
 * SHA256withECDSA. BouncyCastle only builds and encodes the certificates; no JCA provider is
 * registered. Certificate files hold the certificate followed by the authority's ({@code BEGIN
 * CERTIFICATE}); key files hold the unencrypted PKCS#8 key ({@code BEGIN PRIVATE KEY}), with
 * POSIX mode 0600 where the file system has POSIX permissions. Files of the same name are
 * replaced. Certificates are valid from an hour ago to a day from now, unless an authority made
 * with {@link Authority#withValidity} or {@link Authority#expired()} issues them.
 */
public final class TestCertificates {
  private static final String SIGNATURE_ALGORITHM = "SHA256withECDSA";
  private static final Duration BEFORE_NOW = Duration.ofHours(1);
  private static final Duration AFTER_NOW = Duration.ofDays(1);
  private static final SecureRandom RANDOM = new SecureRandom();

  private TestCertificates() {}

  /**
   * A new self-signed certificate authority (basic constraints CA, key usage keyCertSign and
   * cRLSign) whose subject is {@code CN=<commonName>}.
   */
  public static Authority newAuthority(String commonName) {
    Objects.requireNonNull(commonName, "commonName");
    KeyPair keys = newKeyPair();
    X500Principal subject = commonNameDn(commonName);
    Instant now = Instant.now();
    Instant notBefore = now.minus(BEFORE_NOW);
    Instant notAfter = now.plus(AFTER_NOW);
    try {
      JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
      X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, newSerial(),
          Date.from(notBefore), Date.from(notAfter), subject, keys.getPublic())
          .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
          .addExtension(Extension.keyUsage, true,
              new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
          .addExtension(Extension.subjectKeyIdentifier, false,
              extensions.createSubjectKeyIdentifier(keys.getPublic()));
      X509Certificate certificate = sign(builder, keys.getPrivate());
      return new Authority(keys, certificate, notBefore, notAfter);
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot make a test certificate authority", e);
    }
  }

  /** A certificate authority: its key, its self-signed certificate, the validity it issues. */
  public static final class Authority {
    private final KeyPair keys;
    private final X509Certificate certificate;
    private final Instant notBefore;
    private final Instant notAfter;

    private Authority(
        KeyPair keys, X509Certificate certificate, Instant notBefore, Instant notAfter) {
      this.keys = keys;
      this.certificate = certificate;
      this.notBefore = notBefore;
      this.notAfter = notAfter;
    }

    /** The authority's self-signed certificate. */
    public X509Certificate certificate() {
      return certificate;
    }

    /** The authority's subject, RFC 2253 ({@code CN=...}). */
    public String subject() {
      return certificate.getSubjectX500Principal().getName(X500Principal.RFC2253);
    }

    /** Writes the authority's certificate as PEM to {@code file} (a trust file) and returns it. */
    public Path writeCertificate(Path file) {
      writeFile(file, pem(List.of(certificate)), false);
      return file;
    }

    /**
     * The same authority (same key and certificate) issuing certificates valid from {@code
     * notBefore} to {@code notAfter} instead of from an hour ago to a day from now.
     */
    public Authority withValidity(Instant notBefore, Instant notAfter) {
      if (!notBefore.isBefore(notAfter)) {
        throw new IllegalArgumentException("notBefore " + notBefore + " is not before notAfter "
            + notAfter);
      }
      return new Authority(keys, certificate, notBefore, notAfter);
    }

    /** The same authority issuing certificates that expired a day ago (valid two days to one). */
    public Authority expired() {
      Instant now = Instant.now();
      return withValidity(now.minus(Duration.ofDays(2)), now.minus(Duration.ofDays(1)));
    }

    /**
     * Issues a server certificate: subject {@code CN=<name>}, extended key usage serverAuth, the
     * subject alternative names {@code sans} (an IP address literal becomes an IP name, a value
     * with {@code ://} a URI name, anything else a DNS name), or {@code 127.0.0.1} and {@code
     * localhost} when none are given. Writes {@code <dir>/<name>.crt} and {@code <dir>/<name>.key}.
     */
    public Issued issueServer(Path dir, String name, String... sans) {
      String[] names = sans.length == 0 ? new String[] {"127.0.0.1", "localhost"} : sans;
      return issue(dir, name, commonNameDn(name), KeyPurposeId.id_kp_serverAuth, names);
    }

    /**
     * Issues a client certificate: subject {@code subjectDn} (RFC 2253, for example {@code
     * CN=ci,O=acme}; may be empty when there is at least one alternative name), extended key usage
     * clientAuth, the subject alternative names {@code sans} (a value with {@code ://}, such as a
     * {@code spiffe://} id, becomes a URI name, an IP address literal an IP name, anything else a
     * DNS name). Writes {@code <dir>/<name>.crt} and {@code <dir>/<name>.key}.
     */
    public Issued issueClient(Path dir, String name, String subjectDn, String... sans) {
      X500Principal subject;
      try {
        subject = new X500Principal(Objects.requireNonNull(subjectDn, "subjectDn"));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("not a distinguished name: " + subjectDn, e);
      }
      return issue(dir, name, subject, KeyPurposeId.id_kp_clientAuth, sans);
    }

    private Issued issue(
        Path dir, String name, X500Principal subject, KeyPurposeId purpose, String... sans) {
      checkFileName(name);
      boolean emptySubject = subject.getEncoded().length <= 2;
      if (emptySubject && sans.length == 0) {
        throw new IllegalArgumentException("a certificate with an empty subject needs at least"
            + " one subject alternative name");
      }
      KeyPair leafKeys = newKeyPair();
      X509Certificate leaf;
      try {
        JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
            certificate.getSubjectX500Principal(), newSerial(), Date.from(notBefore),
            Date.from(notAfter), subject, leafKeys.getPublic())
            .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
            .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
            .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose))
            .addExtension(Extension.subjectKeyIdentifier, false,
                extensions.createSubjectKeyIdentifier(leafKeys.getPublic()))
            .addExtension(Extension.authorityKeyIdentifier, false,
                extensions.createAuthorityKeyIdentifier(certificate));
        if (sans.length > 0) {
          // RFC 5280: the alternative names are critical when the subject is empty.
          builder.addExtension(Extension.subjectAlternativeName, emptySubject,
              alternativeNames(sans));
        }
        leaf = sign(builder, keys.getPrivate());
      } catch (IOException | GeneralSecurityException e) {
        throw new IllegalStateException("cannot issue the test certificate " + name, e);
      }
      Path certFile = dir.resolve(name + ".crt");
      Path keyFile = dir.resolve(name + ".key");
      writeFile(certFile, pem(List.of(leaf, certificate)), false);
      writeFile(keyFile, pemPrivateKey(leafKeys.getPrivate()), true);
      return new Issued(certFile, keyFile, leaf, leafKeys.getPrivate());
    }
  }

  /** An issued certificate, its key and the PEM files they were written to. */
  public static final class Issued {
    private final Path certFile;
    private final Path keyFile;
    private final X509Certificate certificate;
    private final PrivateKey privateKey;

    private Issued(
        Path certFile, Path keyFile, X509Certificate certificate, PrivateKey privateKey) {
      this.certFile = certFile;
      this.keyFile = keyFile;
      this.certificate = certificate;
      this.privateKey = privateKey;
    }

    /** The PEM file with the certificate followed by its authority's. */
    public Path certFile() {
      return certFile;
    }

    /** The PEM file with the unencrypted PKCS#8 private key ({@code BEGIN PRIVATE KEY}), 0600. */
    public Path keyFile() {
      return keyFile;
    }

    /** The certificate's subject, RFC 2253, as a peer sees it ({@code CN=ci,O=acme}). */
    public String subject() {
      return certificate.getSubjectX500Principal().getName(X500Principal.RFC2253);
    }

    /** The certificate itself. */
    public X509Certificate certificate() {
      return certificate;
    }

    /** The certificate's private key. */
    public PrivateKey privateKey() {
      return privateKey;
    }
  }

  private static GeneralNames alternativeNames(String... sans) {
    List<GeneralName> names = new ArrayList<>();
    for (String san : sans) {
      if (san == null || san.isBlank()) {
        throw new IllegalArgumentException("empty subject alternative name");
      }
      if (san.contains("://")) {
        names.add(new GeneralName(GeneralName.uniformResourceIdentifier, san));
      } else if (IPAddress.isValid(san)) {
        names.add(new GeneralName(GeneralName.iPAddress, san));
      } else {
        names.add(new GeneralName(GeneralName.dNSName, san));
      }
    }
    return new GeneralNames(names.toArray(GeneralName[]::new));
  }

  private static X500Principal commonNameDn(String commonName) {
    // Built from an encoded RDN rather than a string, so any character in the name is kept.
    try {
      return new X500Principal(new X500Name(new RDN[] {
          new RDN(BCStyle.CN, new DERUTF8String(commonName))}).getEncoded());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static KeyPair newKeyPair() {
    try {
      KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
      generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
      return generator.generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK cannot make EC P-256 keys", e);
    }
  }

  private static BigInteger newSerial() {
    // Positive and at most 20 octets, as RFC 5280 asks.
    return new BigInteger(127, RANDOM).add(BigInteger.ONE);
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer)
      throws GeneralSecurityException {
    try {
      return new JcaX509CertificateConverter().getCertificate(
          builder.build(new JcaContentSignerBuilder(SIGNATURE_ALGORITHM).build(signer)));
    } catch (OperatorCreationException e) {
      throw new GeneralSecurityException(e);
    }
  }

  private static String pem(List<X509Certificate> certificates) {
    StringWriter text = new StringWriter();
    try (PemWriter writer = new PemWriter(text)) {
      for (X509Certificate certificate : certificates) {
        writer.writeObject(new PemObject("CERTIFICATE", certificate.getEncoded()));
      }
    } catch (IOException | CertificateEncodingException e) {
      throw new IllegalStateException("cannot encode a test certificate", e);
    }
    return text.toString();
  }

  private static String pemPrivateKey(PrivateKey key) {
    // The JDK's encoding of a private key is PKCS#8 PrivateKeyInfo.
    StringWriter text = new StringWriter();
    try (PemWriter writer = new PemWriter(text)) {
      writer.writeObject(new PemObject("PRIVATE KEY", key.getEncoded()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return text.toString();
  }

  private static void checkFileName(String name) {
    Objects.requireNonNull(name, "name");
    if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.equals(".")
        || name.equals("..")) {
      throw new IllegalArgumentException("not a plain file name: " + name);
    }
  }

  private static void writeFile(Path file, String text, boolean secret) {
    byte[] bytes = text.getBytes(StandardCharsets.US_ASCII);
    try {
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      Files.deleteIfExists(file);
      boolean posix = Files.getFileStore(parent).supportsFileAttributeView("posix");
      if (secret && posix) {
        Set<PosixFilePermission> ownerOnly = PosixFilePermissions.fromString("rw-------");
        try {
          // Created 0600, so the key is never readable by others, not even for a moment.
          Files.createFile(file, PosixFilePermissions.asFileAttribute(ownerOnly));
        } catch (FileAlreadyExistsException e) {
          throw new IOException("another writer made " + file + " meanwhile", e);
        }
        Files.write(file, bytes);
        Files.setPosixFilePermissions(file, ownerOnly);
      } else {
        Files.write(file, bytes);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }
}

package dev.slipway.worker.runtime.security;

import dev.slipway.worker.runtime.config.ConfigProblems;
import dev.slipway.worker.runtime.config.SecuritySettings;
import dev.slipway.worker.runtime.config.SecuritySettings.CallerSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.security.cert.Certificate;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import javax.security.auth.x500.X500Principal;

/**
 * The callers of {@code worker.callers}, and which of them a call comes from: a bearer token
 * first, else the subject or a SAN of the client's mTLS certificate.
 */
public final class CallerRegistry {
  /** What a call's credentials tell. */
  public sealed interface Identification {}

  /** The call carried no credentials: no bearer token and no client certificate. */
  public record NoCredentials() implements Identification {}

  /** The call carried credentials that belong to no caller. */
  public record Unknown(String what) implements Identification {}

  /** The call comes from this caller. */
  public record Known(Caller caller) implements Identification {}

  private record Entry(CallerSpec spec, Caller caller, Optional<TokenFile> token) {}

  private final List<Entry> entries;

  private CallerRegistry(List<Entry> entries) {
    this.entries = entries;
  }

  /** Reads every token file; a file that cannot be used is a start-up problem naming it. */
  public static CallerRegistry load(SecuritySettings settings, ConfigProblems problems) {
    List<Entry> entries = new ArrayList<>();
    for (CallerSpec spec : settings.callers()) {
      Optional<TokenFile> token = Optional.empty();
      if (spec.kind() == SecuritySettings.IdentityKind.TOKEN_FILE) {
        try {
          token = Optional.of(new TokenFile(Path.of(spec.identity())));
        } catch (IOException e) {
          problems.add("worker.callers ('" + spec.name() + "'): " + (e.getMessage() == null
              ? "token-file " + spec.identity() + " cannot be read" : e.getMessage()));
          continue;
        }
      }
      entries.add(new Entry(spec, new Caller(spec.name(), spec.scopes(), spec.admin(), true),
          token));
    }
    return new CallerRegistry(List.copyOf(entries));
  }

  /** Whether any caller is configured; without, every call is {@link Caller#ANONYMOUS}. */
  public boolean enabled() {
    return !entries.isEmpty();
  }

  /**
   * Identifies a call.
   *
   * @param bearer the token of an {@code authorization: Bearer} header, if the call sent one
   * @param tls the call's TLS session, if it came over TLS
   */
  public Identification identify(Optional<String> bearer, Optional<SSLSession> tls) {
    if (bearer.isPresent()) {
      byte[] presented = TokenFile.sha256(bearer.get());
      Caller match = null;
      // Every token is compared, so how long this takes tells nothing of which one matched.
      for (Entry entry : entries) {
        if (entry.token().isPresent() && entry.token().get().matches(presented)
            && match == null) {
          match = entry.caller();
        }
      }
      return match == null ? new Unknown("a bearer token that belongs to no caller")
          : new Known(match);
    }
    Optional<X509Certificate> cert = tls.flatMap(CallerRegistry::peerCertificate);
    if (cert.isEmpty()) {
      return new NoCredentials();
    }
    String subject = cert.get().getSubjectX500Principal().getName(X500Principal.CANONICAL);
    List<String> sans = subjectAltNames(cert.get());
    for (Entry entry : entries) {
      CallerSpec spec = entry.spec();
      boolean matches = switch (spec.kind()) {
        case CERTIFICATE_SUBJECT -> spec.identity().equals(subject);
        case CERTIFICATE_SAN -> sans.contains(typedSan(spec.identity()));
        case TOKEN_FILE -> false;
      };
      if (matches) {
        return new Known(entry.caller());
      }
    }
    return new Unknown("a client certificate whose subject and SANs belong to no caller");
  }

  private static Optional<X509Certificate> peerCertificate(SSLSession session) {
    try {
      Certificate[] chain = session.getPeerCertificates();
      if (chain.length > 0 && chain[0] instanceof X509Certificate x509) {
        return Optional.of(x509);
      }
    } catch (SSLPeerUnverifiedException e) {
      // No client certificate: plain TLS.
    }
    return Optional.empty();
  }

  /**
   * A configured SAN as {@code type:value}. Untyped values mean a DNS name, or a URI when they
   * contain "://", or an IP address when they parse as one; {@code dns:}, {@code uri:},
   * {@code ip:} and {@code email:} say so explicitly. A SAN of one type never matches another's:
   * an e-mail SAN a CA issues freely cannot pose as a DNS identity.
   */
  static String typedSan(String configured) {
    int colon = configured.indexOf(':');
    if (colon > 0) {
      String type = configured.substring(0, colon).toLowerCase(java.util.Locale.ROOT);
      if (List.of("dns", "uri", "ip", "email").contains(type)
          && !configured.startsWith(type + "://")) {
        return type + ":" + configured.substring(colon + 1);
      }
    }
    if (configured.contains("://")) {
      return "uri:" + configured;
    }
    if (configured.matches("[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*")) {
      return "ip:" + configured;
    }
    return "dns:" + configured;
  }

  private static List<String> subjectAltNames(X509Certificate cert) {
    List<String> names = new ArrayList<>();
    try {
      Collection<List<?>> sans = cert.getSubjectAlternativeNames();
      if (sans != null) {
        for (List<?> san : sans) {
          if (san.size() >= 2 && san.get(0) instanceof Integer type
              && san.get(1) instanceof String value) {
            String prefix = switch (type) {
              case 1 -> "email:";
              case 2 -> "dns:";
              case 6 -> "uri:";
              case 7 -> "ip:";
              default -> null; // directory names and others identify nobody here
            };
            if (prefix != null) {
              names.add(prefix + value);
            }
          }
        }
      }
    } catch (CertificateParsingException e) {
      // An unreadable SAN extension identifies nobody.
    }
    return names;
  }
}

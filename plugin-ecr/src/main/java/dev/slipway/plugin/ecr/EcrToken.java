package dev.slipway.plugin.ecr;

import dev.slipway.worker.api.Secret;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A checked, decoded GetAuthorizationToken answer: one login per registry, and when it expires.
 *
 * @param logins one per registry, in ECR's order; never empty
 * @param expiresAt when the first of the tokens expires; empty when ECR gave no expiry, which
 *     makes the token single-use
 * @param fetchedAt when the answer arrived, by the worker's clock
 * @param attempts HTTP requests it took
 */
record EcrToken(List<RegistryLogin> logins, Optional<Instant> expiresAt, Instant fetchedAt, int attempts) {

  EcrToken {
    logins = List.copyOf(logins);
    if (logins.isEmpty()) {
      throw new IllegalArgumentException("no logins");
    }
    Objects.requireNonNull(expiresAt, "expiresAt");
    Objects.requireNonNull(fetchedAt, "fetchedAt");
  }

  /**
   * Checks and decodes ECR's answer.
   *
   * @throws EcrFailure with {@link EcrFailure.Reason#INVALID_RESPONSE} saying what was wrong
   */
  static EcrToken decode(TokenAnswer answer, Instant fetchedAt) throws EcrFailure {
    if (answer.data().isEmpty()) {
      throw invalid(
          "the answer has no authorizationData; ECR returns one entry per registry (the caller's"
              + " own when registry-ids is empty)",
          answer);
    }
    List<RegistryLogin> logins = new ArrayList<>();
    Optional<Instant> expiresAt = Optional.empty();
    for (int i = 0; i < answer.data().size(); i++) {
      AuthorizationData data = answer.data().get(i);
      String entry = "authorizationData[" + i + "]";
      Secret token =
          data.authorizationToken()
              .filter(t -> !t.isBlank())
              .orElseThrow(() -> invalid(entry + " has no authorizationToken", answer));
      String decoded;
      try {
        decoded =
            new String(Base64.getDecoder().decode(token.reveal().trim()), StandardCharsets.UTF_8);
      } catch (IllegalArgumentException e) {
        throw invalid(
            entry + ".authorizationToken is not base64; expected base64 of 'user:password'", answer);
      }
      int colon = decoded.indexOf(':');
      if (colon <= 0 || colon == decoded.length() - 1) {
        throw invalid(
            entry
                + ".authorizationToken does not decode to 'user:password' (a user, a colon, a"
                + " password)",
            answer);
      }
      String registry = registryHost(data.proxyEndpoint(), entry, answer);
      logins.add(
          new RegistryLogin(
              registry,
              decoded.substring(0, colon),
              Secret.of(decoded.substring(colon + 1)),
              Secret.of(token.reveal().trim())));
      if (data.expiresAt().isEmpty()) {
        expiresAt = Optional.of(fetchedAt); // no expiry said: use it for this job only
      } else if (expiresAt.isEmpty() || data.expiresAt().get().isBefore(expiresAt.get())) {
        expiresAt = data.expiresAt();
      }
    }
    return new EcrToken(logins, expiresAt, fetchedAt, answer.attempts());
  }

  /**
   * Whether the token may still be handed out at {@code now}: more than {@code share} of its
   * lifetime remains, as the ECR credential helper decides (it uses half).
   */
  boolean freshAt(Instant now, double share) {
    return now.isBefore(refreshAt(share));
  }

  /** From when the token is fetched anew: once less than {@code share} of its lifetime remains. */
  Instant refreshAt(double share) {
    Instant expiry = expiresAt.orElse(fetchedAt);
    Duration lifetime = Duration.between(fetchedAt, expiry);
    if (lifetime.isNegative() || lifetime.isZero()) {
      return fetchedAt;
    }
    long keepNanos = (long) (lifetime.toNanos() * (1.0 - share));
    return fetchedAt.plusNanos(keepNanos);
  }

  /**
   * The login for the registry {@code imageName} names ({@code host[:port]/repo:tag}), else the
   * first one.
   */
  RegistryLogin loginFor(String imageName) {
    int slash = imageName.indexOf('/');
    if (slash > 0) {
      String host = imageName.substring(0, slash);
      for (RegistryLogin login : logins) {
        if (login.registry().equalsIgnoreCase(host)) {
          return login;
        }
      }
    }
    return logins.get(0);
  }

  /** {@code https://123.dkr.ecr.eu-west-1.amazonaws.com} → {@code 123.dkr.ecr.eu-west-1.amazonaws.com}. */
  private static String registryHost(String proxyEndpoint, String entry, TokenAnswer answer)
      throws EcrFailure {
    String value = proxyEndpoint.trim();
    if (value.isEmpty()) {
      throw invalid(entry + " has no proxyEndpoint, so the registry is unknown", answer);
    }
    // ECR sends a URL with scheme; a bare host is accepted too.
    URI uri;
    try {
      uri = new URI(value.contains("://") ? value : "https://" + value);
    } catch (URISyntaxException e) {
      throw invalid(entry + ".proxyEndpoint '" + value + "' is not a URL", answer);
    }
    if (uri.getHost() == null || uri.getRawUserInfo() != null) {
      throw invalid(
          entry + ".proxyEndpoint '" + value + "' names no host; expected https://<registry host>",
          answer);
    }
    return uri.getRawAuthority();
  }

  private static EcrFailure invalid(String message, TokenAnswer answer) {
    return new EcrFailure(
        EcrFailure.Reason.INVALID_RESPONSE, message, "", answer.attempts(), null);
  }
}

package dev.slipway.plugin.ecr;

import dev.slipway.worker.api.Secret;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * One entry of GetAuthorizationToken's answer, as ECR sent it: nothing decoded, nothing checked.
 *
 * @param authorizationToken base64 of {@code user:password}; empty when ECR sent none
 * @param expiresAt when the token stops working, if ECR said
 * @param proxyEndpoint the registry's URL, e.g. {@code https://123456789012.dkr.ecr.eu-west-1.amazonaws.com};
 *     empty when ECR sent none
 */
public record AuthorizationData(
    Optional<Secret> authorizationToken, Optional<Instant> expiresAt, String proxyEndpoint) {
  public AuthorizationData {
    Objects.requireNonNull(authorizationToken, "authorizationToken");
    Objects.requireNonNull(expiresAt, "expiresAt");
    Objects.requireNonNull(proxyEndpoint, "proxyEndpoint");
  }
}

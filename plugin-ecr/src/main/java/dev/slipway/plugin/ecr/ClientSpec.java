package dev.slipway.plugin.ecr;

import java.net.URI;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * How to build the ECR client: everything of the stage's settings that the SDK sees.
 *
 * @param region the AWS region, e.g. {@code eu-west-1}
 * @param endpointOverride the endpoint to call instead of {@code https://api.ecr.<region>.amazonaws.com}
 * @param maxAttempts HTTP requests per call, the first included
 * @param apiCallTimeout longest one call may take, retries included
 * @param connectTimeout longest to wait for a connection
 * @param credentials where the credentials come from
 */
public record ClientSpec(
    String region,
    Optional<URI> endpointOverride,
    int maxAttempts,
    Duration apiCallTimeout,
    Duration connectTimeout,
    CredentialsSource credentials) {
  public ClientSpec {
    Objects.requireNonNull(region, "region");
    Objects.requireNonNull(endpointOverride, "endpointOverride");
    Objects.requireNonNull(apiCallTimeout, "apiCallTimeout");
    Objects.requireNonNull(connectTimeout, "connectTimeout");
    Objects.requireNonNull(credentials, "credentials");
  }

  /** The endpoint calls go to, for messages. */
  public String endpoint() {
    return endpointOverride.map(URI::toString).orElse("https://api.ecr." + region + ".amazonaws.com");
  }
}

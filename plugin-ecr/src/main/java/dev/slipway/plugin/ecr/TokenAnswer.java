package dev.slipway.plugin.ecr;

import java.util.List;

/**
 * GetAuthorizationToken's answer and what it took.
 *
 * @param data the {@code authorizationData} entries, in ECR's order; possibly empty
 * @param attempts how many HTTP requests the SDK made (retries included)
 */
public record TokenAnswer(List<AuthorizationData> data, int attempts) {
  public TokenAnswer {
    data = List.copyOf(data);
  }
}

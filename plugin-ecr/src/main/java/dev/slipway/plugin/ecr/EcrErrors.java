package dev.slipway.plugin.ecr;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.ErrorKind;

/**
 * Every error code the ecr stage fails with. The codes, their kinds and whether they are
 * retryable are published behaviour: orchestrators act on them, so they keep their meaning.
 */
public enum EcrErrors implements ErrorCode {
  AUTH_FAILED("ecr.auth-failed", ErrorKind.CONFIGURATION, false,
      "no AWS credentials, or AWS refused them or denied GetAuthorizationToken; fix the worker's"
          + " credentials or the principal's policy"),
  UNREACHABLE("ecr.unreachable", ErrorKind.EXTERNAL, true,
      "ECR's endpoint cannot be reached or did not answer within api-call-timeout; may succeed"
          + " later"),
  UNAVAILABLE("ecr.unavailable", ErrorKind.EXTERNAL, true,
      "ECR answered 5xx or throttled on every attempt; may succeed later"),
  INVALID_RESPONSE("ecr.invalid-response", ErrorKind.EXTERNAL, false,
      "the answer held no usable token or registry endpoint; check endpoint-override"),
  FAILED("ecr.failed", ErrorKind.EXTERNAL, false,
      "anything else ECR refused, e.g. a registry id it does not know");

  private final String code;
  private final ErrorKind kind;
  private final boolean retryable;
  private final String description;

  EcrErrors(String code, ErrorKind kind, boolean retryable, String description) {
    this.code = code;
    this.kind = kind;
    this.retryable = retryable;
    this.description = description;
  }

  @Override
  public String code() {
    return code;
  }

  @Override
  public ErrorKind kind() {
    return kind;
  }

  /** Whether a failure with this code may pass when the same request is sent again. */
  public boolean retryable() {
    return retryable;
  }

  @Override
  public String description() {
    return description;
  }
}

package dev.slipway.plugin.ecr;

import java.util.Objects;

/**
 * Why a call to ECR failed, in terms the stage maps to stable error codes. The message is a
 * phrase about the failure for people, as AWS or the network put it; it never holds a secret key,
 * a session token or a registry password.
 */
public final class EcrFailure extends Exception {
  private static final long serialVersionUID = 1L;

  /** The kinds of failure that callers can act on differently. */
  public enum Reason {
    /** No credentials anywhere: not in the environment, no profile, no role. */
    NO_CREDENTIALS,
    /** AWS does not accept the credentials: unknown key, wrong secret key, expired token. */
    CREDENTIALS_REFUSED,
    /** The credentials are valid, but their principal may not call GetAuthorizationToken. */
    ACCESS_DENIED,
    /** ECR cannot be reached: connection refused, unknown host, timed out, TLS failure. */
    UNREACHABLE,
    /** ECR answered 5xx or throttled, on every attempt. */
    UNAVAILABLE,
    /** ECR's answer is not what GetAuthorizationToken returns. */
    INVALID_RESPONSE,
    /** Anything else, e.g. ECR refused a parameter (InvalidParameterException). */
    FAILED
  }

  private final Reason reason;
  private final String errorCode;
  private final int attempts;

  /**
   * @param reason what kind of failure
   * @param message what happened, for people; no secrets
   * @param errorCode AWS's error code ({@code AccessDeniedException}) or the exception's simple
   *     name; empty when neither applies
   * @param attempts how many HTTP requests were made; 0 when none was
   * @param cause the underlying exception, if any
   */
  public EcrFailure(Reason reason, String message, String errorCode, int attempts, Throwable cause) {
    super(message, cause);
    this.reason = Objects.requireNonNull(reason, "reason");
    this.errorCode = Objects.requireNonNull(errorCode, "errorCode");
    this.attempts = attempts;
  }

  public EcrFailure(Reason reason, String message) {
    this(reason, message, "", 0, null);
  }

  public Reason reason() {
    return reason;
  }

  /** AWS's error code or the failing exception's simple name; empty when neither applies. */
  public String errorCode() {
    return errorCode;
  }

  /** How many HTTP requests were made before giving up; 0 when none was. */
  public int attempts() {
    return attempts;
  }
}

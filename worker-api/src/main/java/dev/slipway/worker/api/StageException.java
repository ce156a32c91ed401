package dev.slipway.worker.api;

import java.util.Objects;
import java.util.regex.Pattern;

/**
 * A stage's failure, with a stable code that orchestrators may act on (it becomes
 * {@code JobResponse.error_code}) and a message for people. Codes are {@code <stage-or-area>.<what>}
 * in lower case with dashes, e.g. {@code git.auth-failed}; a code once published keeps its meaning.
 *
 * <p>Messages go to the caller as they are: never put a secret into one.
 */
public class StageException extends Exception {
  private static final long serialVersionUID = 1L;
  private static final Pattern CODE = Pattern.compile("[a-z][a-z0-9-]*(\\.[a-z0-9][a-z0-9-]*)+");

  private final String code;
  private final ErrorKind kind;
  private final boolean retryable;

  public StageException(String code, ErrorKind kind, String message) {
    this(code, kind, message, null);
  }

  public StageException(String code, ErrorKind kind, String message, Throwable cause) {
    this(code, kind, message, cause, false);
  }

  /**
   * @param retryable whether the same request may succeed later: a transient external failure
   *     (a registry's 503, a reset connection, an engine restarting); it becomes {@code
   *     JobResponse.retryable}, a hint for the orchestrator; ignored for {@link
   *     ErrorKind#INVALID_REQUEST} and {@link ErrorKind#CONFIGURATION}, which fail the same way
   *     every time
   */
  public StageException(String code, ErrorKind kind, String message, Throwable cause,
      boolean retryable) {
    super(Objects.requireNonNull(message, "message"), cause);
    if (!CODE.matcher(Objects.requireNonNull(code, "code")).matches()) {
      throw new IllegalArgumentException(
          "error code '" + code + "' must look like 'area.what' (lower case, digits, dashes)");
    }
    this.code = code;
    this.kind = Objects.requireNonNull(kind, "kind");
    this.retryable = retryable;
  }

  /**
   * A failure with one of the plugin's declared codes.
   *
   * @since 0.3
   */
  public StageException(ErrorCode code, String message) {
    this(code, message, null, false);
  }

  /** @since 0.3 */
  public StageException(ErrorCode code, String message, Throwable cause) {
    this(code, message, cause, false);
  }

  /**
   * @param retryable whether the same request may succeed later; see {@link
   *     #StageException(String, ErrorKind, String, Throwable, boolean)}
   * @since 0.3
   */
  public StageException(ErrorCode code, String message, Throwable cause, boolean retryable) {
    this(code.code(), code.kind(), message, cause, retryable);
  }

  /** The stable error code, e.g. {@code git.auth-failed}. */
  public String code() {
    return code;
  }

  public ErrorKind kind() {
    return kind;
  }

  /** Whether the same request may succeed later; see the constructor. */
  public boolean retryable() {
    return retryable;
  }
}

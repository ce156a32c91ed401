package dev.slipway.worker.api;

/**
 * One of a plugin's stable error codes. A plugin declares all of its codes in one enum that
 * implements this interface (as Trino's {@code ErrorCodeSupplier}), lists them in {@link
 * StageFactory#errorCodes()} and throws them with {@link StageException#StageException(ErrorCode,
 * String)}; so the codes an orchestrator may see are known without running a job, and the
 * documentation can be checked against them.
 *
 * @since 0.3
 */
public interface ErrorCode {

  /**
   * The code, {@code <stage-or-area>.<what>} in lower case with dashes, e.g. {@code
   * git.auth-failed}; it becomes {@code JobResponse.error_code} and keeps its meaning once
   * published.
   */
  String code();

  /** Whose fault a failure with this code is; it becomes {@code JobResponse.error_kind}. */
  ErrorKind kind();

  /** One line for people: when the code is used and what to do about it. */
  default String description() {
    return "";
  }
}

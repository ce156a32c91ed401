package dev.slipway.worker.runtime.errors;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import java.util.Optional;
import io.grpc.Status;

/**
 * The one place where failures become error codes and gRPC statuses, so that every path (RunJob,
 * StreamJob, a stage's exception, the runtime's own checks) reports the same thing the same way.
 */
public final class ErrorMapping {
  /** The job was cancelled by its caller or by CancelJob. */
  public static final String CANCELLED = "worker.cancelled";
  /** A stage ran longer than its {@code worker.stages.<id>.timeout}. */
  public static final String STAGE_TIMEOUT = "worker.stage-timeout";
  /** The job ran longer than {@code worker.job-timeout}. */
  public static final String JOB_TIMEOUT = "worker.job-timeout";
  /** A stage threw something other than a {@link StageException}: a bug. */
  public static final String INTERNAL = "worker.internal-error";
  /** The job's workspace could not be made. */
  public static final String WORKSPACE = "worker.workspace-failed";

  /** The message every cancelled job reports, as the original worker did. */
  public static final String CANCELLED_MESSAGE = "Execution cancelled";

  private ErrorMapping() {}

  /**
   * A stage failure as reported to the caller.
   *
   * @param code the stable error code
   * @param message what went wrong, not yet masked
   * @param kind whose fault it is
   * @param retryable whether the same request may succeed later
   */
  public record Failure(String code, String message, ErrorKind kind, boolean retryable) {}

  /** Maps whatever a stage threw to a code and a message. */
  public static Failure stageFailure(String stageId, Throwable thrown) {
    if (thrown instanceof StageException e) {
      // The same wrong request or worker configuration fails the same way however often it is
      // sent: only the failures of others (EXTERNAL) and of the worker's state may pass.
      boolean mayPass = e.kind() == ErrorKind.EXTERNAL || e.kind() == ErrorKind.INTERNAL;
      return new Failure(e.code(), e.getMessage(), e.kind(), e.retryable() && mayPass);
    }
    if (thrown instanceof InterruptedException) {
      return new Failure(INTERNAL, "stage '" + stageId
          + "' was interrupted although the job was not cancelled", ErrorKind.INTERNAL, false);
    }
    String detail = thrown.getMessage() == null ? "" : ": " + thrown.getMessage();
    return new Failure(INTERNAL, "stage '" + stageId + "' failed unexpectedly with "
        + thrown.getClass().getName() + detail, ErrorKind.INTERNAL, false);
  }

  /**
   * Whose fault a failure with one of the runtime's own codes is, and whether a retry may help:
   * a timeout may pass (a slow registry), a workspace that cannot be made may be another worker's
   * to make; a cancel is nobody's fault and no error.
   */
  public static Optional<ErrorKind> kindOf(String runtimeCode) {
    return switch (runtimeCode) {
      case CANCELLED -> Optional.empty();
      case STAGE_TIMEOUT, JOB_TIMEOUT -> Optional.of(ErrorKind.EXTERNAL);
      default -> Optional.of(ErrorKind.INTERNAL);
    };
  }

  /** Whether a job that ended with one of the runtime's own codes may succeed if sent again. */
  public static boolean retryable(String runtimeCode) {
    return switch (runtimeCode) {
      case STAGE_TIMEOUT, JOB_TIMEOUT, WORKSPACE -> true;
      default -> false;
    };
  }

  /** A call whose arguments are wrong, with what would be right. */
  public static Status invalidArgument(String message) {
    return Status.INVALID_ARGUMENT.withDescription(message);
  }

  /** A call without credentials, or with credentials that belong to no caller. */
  public static Status unauthenticated(String message) {
    return Status.UNAUTHENTICATED.withDescription(message);
  }

  /** A known caller asking for something outside its scopes; the message names the rule. */
  public static Status permissionDenied(String message) {
    return Status.PERMISSION_DENIED.withDescription(message);
  }

  /** A job that does not exist, or that the caller may not see: the two look the same. */
  public static Status notFound(String message) {
    return Status.NOT_FOUND.withDescription(message);
  }

  /** A failure inside the worker; the detail is in the worker's log, not in the status. */
  public static Status internal(String message) {
    return Status.INTERNAL.withDescription(message);
  }

  /** The gRPC status for a job that was refused before it started. */
  public static Status status(RejectedJobException e) {
    Status status = switch (e.reason()) {
      case INVALID_REQUEST -> Status.INVALID_ARGUMENT;
      case BUSY -> Status.RESOURCE_EXHAUSTED;
      case DRAINING -> Status.UNAVAILABLE;
      case DUPLICATE_JOB_ID -> Status.ALREADY_EXISTS;
      case INTERNAL -> Status.INTERNAL;
    };
    return status.withDescription(e.getMessage());
  }
}

package dev.slipway.worker.runtime.errors;

/** A job that was not started, and why; the message is for the caller. */
public final class RejectedJobException extends Exception {
  private static final long serialVersionUID = 1L;

  /** Why a job was refused. */
  public enum Reason {
    /** The request is malformed or refused by a stage's checks. */
    INVALID_REQUEST,
    /** Every job slot is taken. */
    BUSY,
    /** The worker is shutting down. */
    DRAINING,
    /** A job with the same id is running. */
    DUPLICATE_JOB_ID,
    /** A stage failed while checking the request: a bug, not the caller's fault. */
    INTERNAL
  }

  private final Reason reason;

  public RejectedJobException(Reason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public Reason reason() {
    return reason;
  }
}

package dev.slipway.worker.runtime.job;

/** How a job ended. */
public enum JobOutcome {
  SUCCEEDED,
  FAILED,
  CANCELLED,
  TIMED_OUT
}

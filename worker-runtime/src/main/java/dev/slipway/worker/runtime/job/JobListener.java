package dev.slipway.worker.runtime.job;

/**
 * Receives a job's events as they happen, on the job's thread, already masked. Implementations
 * must be quick and must not throw; a listener that fails is logged and ignored.
 */
public interface JobListener {
  default void stageStarted(String jobId, String stage) {}

  default void log(String jobId, String stage, String line) {}

  default void stageFinished(String jobId, StageOutcome outcome) {}

  /** The last event of a job; the worker's slot is already free when this is called. */
  default void jobFinished(JobResult result) {}

  JobListener NONE = new JobListener() {};
}

package dev.slipway.worker.runtime.job;

import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * How a job ended, with everything the caller is told. Every text in it is already masked.
 *
 * @param jobId the job's id
 * @param outcome how it ended
 * @param message a sentence for people
 * @param failedStage the stage that failed, was cancelled or timed out, if any
 * @param errorCode the stable error code, if the job did not succeed
 * @param imageUri the pushed image's reference, if a stage published one
 * @param imageDigest the pushed manifest digest, if a stage published one
 * @param commitSha the built commit, if a stage published one
 * @param extraImageUris the references of the extra tags pushed, one per extra tag
 * @param stages each stage that ran, in order
 * @param duration the job's wall time
 * @param caller the name of the caller that started it
 * @param errorKind whose fault the failure is, when the job did not succeed (none for a cancel)
 * @param retryable whether the same request may succeed later
 */
public record JobResult(
    String jobId,
    JobOutcome outcome,
    String message,
    Optional<String> failedStage,
    Optional<String> errorCode,
    Optional<String> imageUri,
    Optional<String> imageDigest,
    Optional<String> commitSha,
    List<String> extraImageUris,
    List<StageOutcome> stages,
    Duration duration,
    String caller,
    Optional<dev.slipway.worker.api.ErrorKind> errorKind,
    boolean retryable) {

  public boolean success() {
    return outcome == JobOutcome.SUCCEEDED;
  }
}

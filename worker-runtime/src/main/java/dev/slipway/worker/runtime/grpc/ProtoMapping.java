package dev.slipway.worker.runtime.grpc;

import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.StageResult;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.runtime.job.JobResult;
import dev.slipway.worker.runtime.job.StageOutcome;
import java.util.Optional;
import java.util.TreeMap;

/** Converts between the gRPC contract and the runtime's own types. */
final class ProtoMapping {
  static final String DEFAULT_DOCKERFILE = "Dockerfile";
  static final String DEFAULT_CONTEXT = ".";

  private ProtoMapping() {}

  /** The request as stages see it, with the contract's defaults applied. */
  static JobRequestView toView(JobRequest request) {
    return new JobRequestView(
        request.getJobId().trim(),
        request.getRepoUrl().trim(),
        request.getBranch().trim(),
        request.getGithubToken().isBlank()
            ? Optional.empty()
            : Optional.of(Secret.of(request.getGithubToken().trim())),
        request.getImageName().trim(),
        request.getDockerfilePath().isBlank() ? DEFAULT_DOCKERFILE
            : request.getDockerfilePath().trim(),
        request.getContextDir().isBlank() ? DEFAULT_CONTEXT : request.getContextDir().trim(),
        // Sorted, so that builds and logs do not depend on hash order.
        new TreeMap<>(request.getBuildArgsMap()),
        secrets(request.getBuildSecretsMap()));
  }

  private static java.util.Map<String, Secret> secrets(java.util.Map<String, String> values) {
    java.util.Map<String, Secret> secrets = new TreeMap<>();
    values.forEach((k, v) -> secrets.put(k, Secret.of(v)));
    return secrets;
  }

  static JobResponse toProto(JobResult result) {
    JobResponse.Builder response = JobResponse.newBuilder()
        .setJobId(result.jobId())
        .setSuccess(result.success())
        .setMessage(result.message())
        .setOutcome(outcome(result.outcome()))
        .setDurationMs(result.duration().toMillis());
    result.failedStage().ifPresent(response::setFailedStage);
    result.errorCode().ifPresent(response::setErrorCode);
    result.imageUri().ifPresent(response::setImageUri);
    result.imageDigest().ifPresent(response::setImageDigest);
    result.commitSha().ifPresent(response::setCommitSha);
    for (StageOutcome stage : result.stages()) {
      response.addStages(toProto(stage));
    }
    return response.build();
  }

  static StageResult toProto(StageOutcome stage) {
    return StageResult.newBuilder()
        .setStage(stage.stage())
        .setSuccess(stage.success())
        .setDurationMs(stage.duration().toMillis())
        .setMessage(stage.message())
        .build();
  }

  static JobOutcome outcome(dev.slipway.worker.runtime.job.JobOutcome outcome) {
    return switch (outcome) {
      case SUCCEEDED -> JobOutcome.JOB_OUTCOME_SUCCEEDED;
      case FAILED -> JobOutcome.JOB_OUTCOME_FAILED;
      case CANCELLED -> JobOutcome.JOB_OUTCOME_CANCELLED;
      case TIMED_OUT -> JobOutcome.JOB_OUTCOME_TIMED_OUT;
    };
  }
}

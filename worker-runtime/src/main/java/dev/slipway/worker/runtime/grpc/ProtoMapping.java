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
    String token = spaces(request.getGithubToken());
    String dockerfile = spaces(request.getDockerfilePath());
    String context = spaces(request.getContextDir());
    return JobRequestView.builder(spaces(request.getRepoUrl()), spaces(request.getImageName()))
        .jobId(spaces(request.getJobId()))
        .branch(spaces(request.getBranch()))
        .token(token.isEmpty() ? Optional.empty() : Optional.of(Secret.of(token)))
        .dockerfilePath(dockerfile.isEmpty() ? DEFAULT_DOCKERFILE : dockerfile)
        .contextDir(context.isEmpty() ? DEFAULT_CONTEXT : context)
        // Sorted, so that builds and logs do not depend on hash order.
        .buildArgs(new TreeMap<>(request.getBuildArgsMap()))
        .buildSecrets(secrets(request.getBuildSecretsMap()))
        .commitSha(spaces(request.getCommitSha()))
        .ref(spaces(request.getRef()))
        .extraTags(request.getExtraTagsList().stream().map(ProtoMapping::spaces).toList())
        .build();
  }

  private static java.util.Map<String, Secret> secrets(java.util.Map<String, String> values) {
    java.util.Map<String, Secret> secrets = new TreeMap<>();
    values.forEach((k, v) -> secrets.put(k, Secret.of(v)));
    return secrets;
  }

  /**
   * The value without the plain spaces around it. Not {@code trim()}: that drops every control
   * character at the ends too (a NUL, an escape), which the request's checks must see to refuse.
   */
  private static String spaces(String value) {
    int start = 0;
    int end = value.length();
    while (start < end && value.charAt(start) == ' ') {
      start++;
    }
    while (end > start && value.charAt(end - 1) == ' ') {
      end--;
    }
    return value.substring(start, end);
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
    response.addAllExtraImageUris(result.extraImageUris());
    result.errorKind().ifPresent(kind -> response.setErrorKind(switch (kind) {
      case INVALID_REQUEST -> dev.slipway.proto.v1.ErrorKind.ERROR_KIND_INVALID_REQUEST;
      case EXTERNAL -> dev.slipway.proto.v1.ErrorKind.ERROR_KIND_EXTERNAL;
      case CONFIGURATION -> dev.slipway.proto.v1.ErrorKind.ERROR_KIND_CONFIGURATION;
      case INTERNAL -> dev.slipway.proto.v1.ErrorKind.ERROR_KIND_INTERNAL;
    }));
    response.setRetryable(result.retryable());
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

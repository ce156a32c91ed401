package dev.slipway.worker.api;

import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A job's request as stages see it: the fields of the gRPC {@code JobRequest} with defaults
 * applied ({@code Dockerfile}, {@code .}) and the token wrapped so that it never prints.
 *
 * @param jobId the job's id
 * @param repoUrl the repository to clone
 * @param branch the branch to check out; empty for the remote's default branch
 * @param token the token for a private repository, if any
 * @param imageName the image to build, {@code repository[:tag]}
 * @param dockerfilePath the Dockerfile, relative to the repository root
 * @param contextDir the build context, relative to the repository root
 * @param buildArgs build arguments, in the caller's order; visible in the build's process list
 *     and the image's history, so never secrets
 * @param buildSecrets BuildKit secrets by id, for {@code RUN --mount=type=secret,id=<id>}; their
 *     values are masked in every log line and event of the job
 * @param commitSha the exact commit to build (40 hex digits), or empty for the tip of
 *     {@code branch} / {@code ref}
 * @param ref any ref to build ({@code refs/tags/v1}, {@code refs/pull/42/merge}), or empty;
 *     never set together with {@code branch}
 */
public record JobRequestView(
    String jobId,
    String repoUrl,
    String branch,
    Optional<Secret> token,
    String imageName,
    String dockerfilePath,
    String contextDir,
    Map<String, String> buildArgs,
    Map<String, Secret> buildSecrets,
    String commitSha,
    String ref) {

  public JobRequestView {
    Objects.requireNonNull(jobId, "jobId");
    Objects.requireNonNull(repoUrl, "repoUrl");
    Objects.requireNonNull(branch, "branch");
    Objects.requireNonNull(token, "token");
    Objects.requireNonNull(imageName, "imageName");
    Objects.requireNonNull(dockerfilePath, "dockerfilePath");
    Objects.requireNonNull(contextDir, "contextDir");
    buildArgs = Map.copyOf(buildArgs);
    buildSecrets = Map.copyOf(buildSecrets);
    Objects.requireNonNull(commitSha, "commitSha");
    Objects.requireNonNull(ref, "ref");
  }

  /** A request without an exact commit or ref: the constructor of worker-api 0.2. */
  public JobRequestView(String jobId, String repoUrl, String branch, Optional<Secret> token,
      String imageName, String dockerfilePath, String contextDir, Map<String, String> buildArgs,
      Map<String, Secret> buildSecrets) {
    this(jobId, repoUrl, branch, token, imageName, dockerfilePath, contextDir, buildArgs,
        buildSecrets, "", "");
  }

  /** A request without build secrets: the constructor of worker-api 0.1, kept for plugins. */
  public JobRequestView(String jobId, String repoUrl, String branch, Optional<Secret> token,
      String imageName, String dockerfilePath, String contextDir, Map<String, String> buildArgs) {
    this(jobId, repoUrl, branch, token, imageName, dockerfilePath, contextDir, buildArgs,
        Map.of());
  }
}

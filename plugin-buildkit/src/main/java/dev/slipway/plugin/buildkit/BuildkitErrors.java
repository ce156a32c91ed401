package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.ErrorKind;

/**
 * Every error code the {@code buildkit} stage fails with. The codes are published (orchestrators
 * act on them): a code keeps its string, kind and meaning. A stage that runs past its {@code
 * timeout} is stopped by the runtime and reported with the runtime's {@code worker.stage-timeout}.
 */
enum BuildkitErrors implements ErrorCode {
  INVALID_REQUEST("build.invalid-request", ErrorKind.INVALID_REQUEST,
      "the request cannot be built: image_name, a build arg, a build secret or a per-job option is"
          + " not valid; the message names it and says what would be"),
  INVALID_PATH("build.invalid-path", ErrorKind.INVALID_REQUEST,
      "dockerfile_path or context_dir is absolute or leads outside the source tree; give a path"
          + " inside the repository"),
  DOCKERFILE_NOT_FOUND("build.dockerfile-not-found", ErrorKind.INVALID_REQUEST,
      "dockerfile_path names no file in the repository"),
  CONTEXT_NOT_FOUND("build.context-not-found", ErrorKind.INVALID_REQUEST,
      "context_dir names no directory in the repository"),
  SOURCE_MISSING("build.source-missing", ErrorKind.INTERNAL,
      "the source directory an earlier stage published cannot be read"),
  FAILED("build.failed", ErrorKind.EXTERNAL,
      "the image build failed (a Dockerfile step, a base image that cannot be pulled, ...); the"
          + " message quotes the last lines of the build's output"),
  ENGINE_UNREACHABLE("build.engine-unreachable", ErrorKind.EXTERNAL,
      "the Docker engine (or buildkitd) does not answer, or went away during the build; retryable"),
  /**
   * Declared INTERNAL (build.sh refused the arguments the stage formed); a build.sh that cannot be
   * started at all is reported with this code as CONFIGURATION, as it always was.
   */
  SCRIPT_ERROR("build.script-error", ErrorKind.INTERNAL,
      "build.sh refused its arguments (INTERNAL), or could not be started (CONFIGURATION: check"
          + " worker.stages.buildkit.script)"),
  TMP_FAILED("build.tmp-failed", ErrorKind.INTERNAL,
      "no private temporary directory or file could be made for the build, its secrets or its"
          + " registry credentials"),
  INVALID_CREDENTIALS("build.invalid-credentials", ErrorKind.CONFIGURATION,
      "the registry credentials an earlier stage published cannot be handed to the build (the"
          + " registry is not host[:port], or the user name has a ':'); check that stage");

  private final String code;
  private final ErrorKind kind;
  private final String description;

  BuildkitErrors(String code, ErrorKind kind, String description) {
    this.code = code;
    this.kind = kind;
    this.description = description;
  }

  @Override
  public String code() {
    return code;
  }

  @Override
  public ErrorKind kind() {
    return kind;
  }

  @Override
  public String description() {
    return description;
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;

/**
 * Every error code the {@code docker-push} stage fails with. The codes, kinds and retryable hints
 * are published: orchestrators act on them, so they keep their meaning.
 */
enum PushErrors implements ErrorCode {
  DENIED("push.denied", ErrorKind.EXTERNAL,
      "the registry refused the credentials or the access, in the push or in the digest check; not retried"),
  FAILED("push.failed", ErrorKind.EXTERNAL,
      "any other push or tagging failure (the engine's message), retries used up, or no manifest after the push;"
          + " retryable when transient"),
  DIGEST_MISMATCH("push.digest-mismatch", ErrorKind.EXTERNAL,
      "the registry serves another digest under a tag than the engine reported, or an extra tag than the main"
          + " tag"),
  INVALID_REQUEST("push.invalid-request", ErrorKind.INVALID_REQUEST,
      "image_name is not [registry/]repository[:tag] or carries a digest, or extra_tags are not valid tags,"
          + " repeat one another or the main tag, or are more than 16"),
  REGISTRY_NOT_ALLOWED("push.registry-not-allowed", ErrorKind.INVALID_REQUEST,
      "image_name names another registry than the worker pushes to; kind CONFIGURATION when the auth stage"
          + " published another registry than the configured one"),
  NO_REGISTRY("push.no-registry", ErrorKind.CONFIGURATION,
      "no registry anywhere: none published by an auth stage, none configured, none in image_name"),
  IMAGE_NOT_FOUND("push.image-not-found", ErrorKind.INTERNAL,
      "the Docker engine has no image under the name the build stage published"),
  ENGINE_UNREACHABLE("push.engine-unreachable", ErrorKind.EXTERNAL,
      "the Docker engine does not answer; retryable");

  private final String code;
  private final ErrorKind kind;
  private final String description;

  PushErrors(String code, ErrorKind kind, String description) {
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

  /**
   * This code with another kind: {@code push.registry-not-allowed} is one code for "this push
   * would go where it may not", and its kind says whose fault that is.
   */
  ErrorCode withKind(ErrorKind other) {
    PushErrors self = this;
    return new ErrorCode() {
      @Override
      public String code() {
        return self.code;
      }

      @Override
      public ErrorKind kind() {
        return other;
      }

      @Override
      public String description() {
        return self.description;
      }
    };
  }

  /** The stage's failure for an engine that failed or could not be reached. */
  static StageException engineFailure(EngineException e) {
    return switch (e.reason()) {
      case UNREACHABLE -> new StageException(ENGINE_UNREACHABLE, e.getMessage(), e, true);
      case NOT_FOUND -> new StageException(IMAGE_NOT_FOUND, e.getMessage(), e);
      case FAILED -> new StageException(FAILED, e.getMessage(), e);
    };
  }
}

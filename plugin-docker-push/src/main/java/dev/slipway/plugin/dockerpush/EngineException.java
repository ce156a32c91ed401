package dev.slipway.plugin.dockerpush;

/** The Docker engine failed or could not be reached; the message is the engine's own. */
final class EngineException extends Exception {
  private static final long serialVersionUID = 1L;

  /** What went wrong, which decides the stage's error code. */
  enum Reason {
    /** The engine did not answer: no socket, connection refused, connection lost. */
    UNREACHABLE,
    /** The engine has no such image. */
    NOT_FOUND,
    /** The engine answered with an error. */
    FAILED
  }

  private final Reason reason;

  EngineException(Reason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  Reason reason() {
    return reason;
  }
}

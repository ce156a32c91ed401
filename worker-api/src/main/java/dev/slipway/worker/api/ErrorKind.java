package dev.slipway.worker.api;

/** Whose fault a {@link StageException} is, which decides how the runtime reports it. */
public enum ErrorKind {
  /** The job's request is wrong; the caller must change it. */
  INVALID_REQUEST,
  /** A system the stage talks to refused or failed: a git server, an engine, a registry. */
  EXTERNAL,
  /** The worker's configuration cannot serve this job. */
  CONFIGURATION,
  /** A bug or an unexpected state inside the worker or plugin. */
  INTERNAL
}

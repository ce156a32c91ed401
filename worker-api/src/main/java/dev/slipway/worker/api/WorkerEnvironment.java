package dev.slipway.worker.api;

import java.nio.file.Path;
import java.util.Optional;

/** Facts about the worker that a stage may need when it is created. */
public interface WorkerEnvironment {

  /** The worker's id, as registered with the orchestrator. */
  String workerId();

  /** The worker's region ({@code worker.region}, else {@code AWS_REGION}), if set. */
  Optional<String> region();

  /**
   * The worker's installation directory: the jlink image's root, or the working directory when
   * run from a build. Relative paths in stage configuration resolve against it.
   */
  Path home();

  /**
   * An environment variable as the worker sees it: the process environment, else the {@code .env}
   * file of the working directory. Stages read their environment through this, not
   * {@link System#getenv}, so that {@code .env} works for them too.
   */
  Optional<String> env(String name);
}

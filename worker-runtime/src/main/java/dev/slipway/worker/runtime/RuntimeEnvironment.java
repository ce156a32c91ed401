package dev.slipway.worker.runtime;

import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.runtime.config.Environment;
import java.nio.file.Path;
import java.util.Optional;

/** What stages learn about the worker when they are created. */
record RuntimeEnvironment(String workerId, Optional<String> region, Path home,
    Environment environment) implements WorkerEnvironment {

  @Override
  public Optional<String> env(String name) {
    return environment.get(name);
  }
}

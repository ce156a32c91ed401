package dev.slipway.worker.runtime;

import dev.slipway.worker.runtime.config.Environment;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Properties;

/**
 * Everything a worker is made from besides its plugins.
 *
 * @param configFile the operator's HOCON file, if given with {@code --config}
 * @param workingDirectory where {@code .env}, {@code application.conf} and relative paths are found
 * @param environment the environment variables, {@code .env} merged in
 * @param systemProperties {@code -D} overrides
 * @param home the installation directory (the jlink image's root)
 */
public record WorkerOptions(
    Optional<Path> configFile,
    Path workingDirectory,
    Environment environment,
    Properties systemProperties,
    Path home) {

  /**
   * Where plugin folders are loaded from: {@code SLIPWAY_PLUGINS_DIR}, else {@code plugins/} in
   * the installation directory. Not a HOCON key, because plugins supply part of the configuration.
   */
  public Path pluginsDir() {
    return environment.get("SLIPWAY_PLUGINS_DIR").map(home::resolve)
        .orElse(home.resolve("plugins"));
  }

  /** Options for a worker started from the command line in {@code workingDirectory}. */
  public static WorkerOptions fromProcess(Optional<Path> configFile) {
    Path cwd = Path.of("").toAbsolutePath();
    Path home = Optional.ofNullable(System.getProperty("slipway.home"))
        .map(Path::of).orElse(cwd);
    return new WorkerOptions(configFile, cwd, Environment.load(cwd), System.getProperties(), home);
  }
}

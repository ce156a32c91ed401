package dev.slipway.worker.runtime.plugins;

import dev.slipway.worker.api.StageFactory;

/**
 * A stage factory found by {@link java.util.ServiceLoader}, with where it came from.
 *
 * @param id the stage id
 * @param factory the factory
 * @param moduleName the providing module's name, or {@code unnamed} for the class path
 * @param version the providing module's version, or {@code unknown}
 * @param source where the module was loaded from: a plugin folder, or {@code boot layer}
 */
public record DiscoveredStage(
    String id, StageFactory factory, String moduleName, String version, String source) {

  /** The module that provides the stage, whose {@code reference.conf} holds its defaults. */
  public Module module() {
    return factory.getClass().getModule();
  }
}

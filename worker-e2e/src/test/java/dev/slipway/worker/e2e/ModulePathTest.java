package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * These tests run the runtime and the bundled plugins as named modules, as production does:
 * on the class path, module boundaries (the plugins export nothing) and each module's own
 * reference.conf would not be what is tested.
 */
class ModulePathTest {
  @Test
  void theTestsTheRuntimeAndThePluginsAreNamedModules() throws Exception {
    assertEquals("dev.slipway.worker.e2e", getClass().getModule().getName());
    assertEquals("dev.slipway.worker.runtime", Worker.class.getModule().getName());
    Map<String, String> modules = new TreeMap<>();
    for (DiscoveredStage stage : PluginRegistry.discover().all()) {
      if (!stage.id().startsWith("test-")) {
        assertTrue(stage.module().isNamed(), stage.id() + " comes from the class path");
        modules.put(stage.id(), stage.module().getName());
      }
    }
    assertEquals(Map.of("git", "dev.slipway.plugin.git", "buildkit", "dev.slipway.plugin.buildkit",
        "ecr", "dev.slipway.plugin.ecr", "docker-push", "dev.slipway.plugin.dockerpush"),
        modules);
  }
}

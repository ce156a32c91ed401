package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKeys;
import java.lang.module.ModuleDescriptor;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ModuleDescriptorTest {

  @Test
  void providesTheStageFactoryAndExportsNothing() {
    Module module = BuildkitStageFactory.class.getModule();
    assertTrue(module.isNamed(), "tests run on the module path");
    ModuleDescriptor descriptor = module.getDescriptor();
    assertEquals("dev.slipway.plugin.buildkit", descriptor.name());
    assertEquals(Set.of(), descriptor.exports());
    assertEquals(1, descriptor.provides().size());
    ModuleDescriptor.Provides provides = descriptor.provides().iterator().next();
    assertEquals(StageFactory.class.getName(), provides.service());
    assertEquals(List.of(BuildkitStageFactory.class.getName()), provides.providers());
  }

  @Test
  void declaresWhatItConsumesAndProduces() {
    BuildkitStageFactory factory = new BuildkitStageFactory();
    assertEquals("buildkit", factory.id());
    assertEquals(Set.of(StageKeys.SOURCE_DIR, StageKeys.COMMIT_SHA), factory.requires());
    assertEquals(Set.of(StageKeys.LOCAL_IMAGE), factory.produces());
    assertTrue(factory.secretConfigPaths().isEmpty(), "no secrets in the stage's configuration");
  }
}

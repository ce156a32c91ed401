package dev.slipway.plugin.dockerpush;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKeys;
import java.lang.module.ModuleDescriptor;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class ModuleDescriptorTest {

  @Test
  void providesTheStageFactoryAndExportsNothing() {
    Module module = DockerPushStageFactory.class.getModule();
    assertTrue(module.isNamed(), "tests run on the module path");
    ModuleDescriptor descriptor = module.getDescriptor();
    assertEquals("dev.slipway.plugin.dockerpush", descriptor.name());
    assertEquals(Set.of(), descriptor.exports());
    assertEquals(1, descriptor.provides().size());
    ModuleDescriptor.Provides provides = descriptor.provides().iterator().next();
    assertEquals(StageFactory.class.getName(), provides.service());
    assertEquals(List.of(DockerPushStageFactory.class.getName()), provides.providers());
    Set<String> requires = descriptor.requires().stream().map(ModuleDescriptor.Requires::name).collect(Collectors.toSet());
    assertTrue(requires.containsAll(Set.of("dev.slipway.worker.api", "java.net.http", "com.github.dockerjava.core",
        "com.github.dockerjava.transport.httpclient5")), requires.toString());
  }

  @Test
  void declaresWhatItConsumesProducesAndKeepsSecret() {
    DockerPushStageFactory factory = new DockerPushStageFactory();
    assertEquals("docker-push", factory.id());
    assertEquals(Set.of(StageKeys.LOCAL_IMAGE), factory.requires());
    assertEquals(Set.of(StageKeys.IMAGE_URI, StageKeys.IMAGE_DIGEST, StageKeys.EXTRA_IMAGE_URIS), factory.produces());
    assertEquals(Set.of("auth.password"), factory.secretConfigPaths());
    assertTrue(!factory.description().isBlank());
  }

  @Test
  void noDockerJavaTypeAppearsOutsideTheEngineAdapter() throws Exception {
    // The SDK stays behind ImageEngine: only DockerJavaEngine (and its nested classes) may use it.
    for (Class<?> type : List.of(DockerPushStage.class, DockerPushStageFactory.class, DockerPushSettings.class,
        ImageEngine.class, PushMessage.class, PushProgress.class, RegistryApi.class, ImageName.class,
        RequestedImage.class, Destinations.class, LocalTags.class, LocalNames.class, PushWithRetries.class,
        EngineRetries.class, DigestCheck.class, Cancellation.class, PushErrors.class, PushLeftovers.class)) {
      for (var method : type.getDeclaredMethods()) {
        for (Class<?> p : method.getParameterTypes()) {
          assertTrue(!p.getName().startsWith("com.github.dockerjava"), type + "." + method.getName() + " takes " + p);
        }
        assertTrue(!method.getReturnType().getName().startsWith("com.github.dockerjava"),
            type + "." + method.getName() + " returns " + method.getReturnType());
      }
      for (var field : type.getDeclaredFields()) {
        assertTrue(!field.getType().getName().startsWith("com.github.dockerjava"), type + "." + field.getName());
      }
    }
  }
}

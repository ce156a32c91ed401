package dev.slipway.plugin.dockerpush;

import com.typesafe.config.Config;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Provides the {@code docker-push} stage: tags the image the build stage left in the local Docker
 * engine (under a job-private name) as {@code <registry>/<repository>:<tag>} for the push, pushes it (docker-java, httpclient5 transport)
 * with the credentials an auth stage published or the configured ones, confirms the digest with the
 * registry and publishes the image URI and digest. Needs {@link StageKeys#LOCAL_IMAGE}; uses {@link
 * StageKeys#REGISTRY_CREDENTIALS} when an earlier stage published them.
 *
 * <p>Settings live under {@code worker.stages.docker-push}; this module's {@code reference.conf}
 * documents each of them.
 */
public final class DockerPushStageFactory implements StageFactory {
  private static final Logger LOG = LoggerFactory.getLogger(DockerPushStageFactory.class);

  /** For {@link java.util.ServiceLoader}. */
  public DockerPushStageFactory() {}

  @Override
  public String id() {
    return "docker-push";
  }

  @Override
  public String description() {
    return "tags and pushes the built image to its registry (docker-java), confirms the digest with the registry";
  }

  @Override
  public Set<StageKey<?>> requires() {
    // REGISTRY_CREDENTIALS is optional: registries without auth, or static auth from config.
    return Set.of(StageKeys.LOCAL_IMAGE);
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.IMAGE_URI, StageKeys.IMAGE_DIGEST);
  }

  @Override
  public Set<String> secretConfigPaths() {
    return Set.of("auth.password");
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) throws StageConfigException {
    DockerPushSettings settings = DockerPushSettings.from(config, environment);
    settings.warnings().forEach(LOG::warn);
    return new DockerPushStage(
        settings,
        DockerJavaEngine.create(settings.engine()),
        new RegistryApi(settings.registryTimeout(), settings.insecureRegistries(), settings.tokenRealmHosts()),
        System::nanoTime);
  }
}

package dev.slipway.plugin.dockerpush;

import com.typesafe.config.Config;
import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Provides the {@code docker-push} stage: tags the image the build stage left in the local Docker
 * engine (under a job-private name) as {@code <registry>/<repository>:<tag>} and each extra tag for
 * the push, pushes it (docker-java, httpclient5 transport) with the credentials an auth stage
 * published or the configured ones, confirms the digests with the registry and publishes the image
 * URIs and digest. Needs {@link StageKeys#LOCAL_IMAGE}; uses {@link
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
    return "tags and pushes the built image to its registry (docker-java), under extra tags too, confirms the digests with"
        + " the registry";
  }

  @Override
  public Set<StageKey<?>> requires() {
    // REGISTRY_CREDENTIALS is optional: registries without auth, or static auth from config.
    return Set.of(StageKeys.LOCAL_IMAGE);
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.IMAGE_URI, StageKeys.IMAGE_DIGEST, StageKeys.EXTRA_IMAGE_URIS);
  }

  @Override
  public List<StageOption> options() {
    return List.of(StageOption.bool(DockerPushStage.REMOVE_LOCAL_TAGS, "true",
        "false leaves the pushed names (the main and each extra tag) in the worker's Docker engine after the"
            + " job, on the pushed image; an image that had such a name keeps its id without it, as after"
            + " docker tag. true gives every name back to the image that had it, or removes it"));
  }

  @Override
  public List<? extends ErrorCode> errorCodes() {
    return List.of(PushErrors.values());
  }

  @Override
  public Set<String> secretConfigPaths() {
    return Set.of("auth.password");
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) throws StageConfigException {
    DockerPushSettings settings = DockerPushSettings.from(config, environment);
    settings.warnings().forEach(LOG::warn);
    // Every setting is checked now; the clients are built by the first job that needs them.
    return new DockerPushStage(
        settings,
        new LazyEngine(() -> DockerJavaEngine.create(settings.engine())),
        new LazyRegistryClient(() -> new RegistryApi(
            settings.registryTimeout(), settings.insecureRegistries(), settings.tokenRealmHosts())),
        System::nanoTime);
  }
}

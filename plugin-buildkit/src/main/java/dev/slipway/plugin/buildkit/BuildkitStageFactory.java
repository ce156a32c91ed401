package dev.slipway.plugin.buildkit;

import com.typesafe.config.Config;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.WorkerEnvironment;
import java.time.Clock;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Provides the {@code buildkit} stage: builds the job's image with BuildKit through {@code
 * scripts/build.sh}, either against the local Docker engine ({@code backend = docker}) or a remote
 * buildkitd ({@code backend = buildctl}). Needs the source tree and commit sha of an earlier stage
 * (the {@code git} stage publishes both); publishes the local image reference. Uses the registry
 * credentials of an auth stage that ran before it, if any, for private base images.
 *
 * <p>Settings live under {@code worker.stages.buildkit}; this module's {@code reference.conf}
 * documents each of them. What the configuration lets builds reach ({@code network = host}) is
 * logged as a warning when the stage is created, at start-up.
 */
public final class BuildkitStageFactory implements StageFactory {
  private static final Logger LOG = LoggerFactory.getLogger(BuildkitStageFactory.class);

  /** For {@link java.util.ServiceLoader}. */
  public BuildkitStageFactory() {}

  @Override
  public String id() {
    return "buildkit";
  }

  @Override
  public String description() {
    return "builds the job's image with BuildKit (docker engine or remote buildkitd) through build.sh";
  }

  /** {@code target}, {@code platform} and {@code no-cache}; see {@link BuildChoices}. */
  @Override
  public List<StageOption> options() {
    return BuildChoices.DECLARED;
  }

  @Override
  public List<BuildkitErrors> errorCodes() {
    return List.of(BuildkitErrors.values());
  }

  @Override
  public Set<StageKey<?>> requires() {
    return Set.of(StageKeys.SOURCE_DIR, StageKeys.COMMIT_SHA);
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.LOCAL_IMAGE);
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) throws StageConfigException {
    BuildkitSettings settings = BuildkitSettings.from(config, environment);
    settings.warnings().forEach(LOG::warn);
    return new BuildkitStage(settings, environment, Clock.systemUTC());
  }
}

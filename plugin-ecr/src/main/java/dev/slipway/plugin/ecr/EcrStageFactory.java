package dev.slipway.plugin.ecr;

import com.typesafe.config.Config;
import dev.slipway.plugin.ecr.sdk.SdkEcrAuthClient;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.WorkerEnvironment;
import java.time.Clock;
import java.util.List;
import java.util.Set;

/**
 * Provides the {@code ecr} stage, which logs in to Amazon ECR with the AWS SDK's
 * GetAuthorizationToken and publishes the registry host and credentials ({@link
 * StageKeys#REGISTRY_CREDENTIALS}) for the push stage. Configured under {@code
 * worker.stages.ecr}; see the plugin's {@code reference.conf}.
 *
 * <p>The token cache belongs to the factory, so stages it creates with the same settings (after a
 * configuration reload, say) share tokens; its key holds everything that changes ECR's answer.
 */
public final class EcrStageFactory implements StageFactory {
  private final Clock clock;
  private final TokenCache cache;

  /** For {@link java.util.ServiceLoader}. */
  public EcrStageFactory() {
    this(Clock.systemUTC());
  }

  EcrStageFactory(Clock clock) {
    this.clock = clock;
    this.cache = new TokenCache(clock);
  }

  @Override
  public String id() {
    return "ecr";
  }

  @Override
  public String description() {
    return "Logs in to Amazon ECR (GetAuthorizationToken, cached) and hands the registry"
        + " credentials to the push stage";
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) throws StageConfigException {
    EcrSettings settings = EcrSettings.from(config, environment);
    // Every setting is checked now; the SDK's client is built by the first job that needs it.
    return create(settings, new LazyAuthClient(() -> SdkEcrAuthClient.create(settings.clientSpec())));
  }

  /** The stage over another client: a fake in tests. */
  Stage create(EcrSettings settings, EcrAuthClient client) {
    return new EcrStage(settings, client, cache, clock);
  }

  /** How many tokens the factory's cache holds. */
  int cachedTokens() {
    return cache.size();
  }

  @Override
  public List<EcrErrors> errorCodes() {
    return List.of(EcrErrors.values());
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.REGISTRY_CREDENTIALS);
  }
}

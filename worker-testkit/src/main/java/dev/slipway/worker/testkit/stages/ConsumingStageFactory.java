package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.Set;

/**
 * {@code test-consume}: reads what {@code test-publish} published and publishes an image URI and
 * digest made from it, as a push stage would. Logs the password it was handed, which the runtime
 * must mask.
 */
public final class ConsumingStageFactory implements StageFactory {
  @Override
  public String id() {
    return "test-consume";
  }

  @Override
  public Set<StageKey<?>> requires() {
    return Set.of(StageKeys.COMMIT_SHA, StageKeys.REGISTRY_CREDENTIALS);
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.IMAGE_URI, StageKeys.IMAGE_DIGEST);
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) {
    return context -> {
      String sha = context.require(StageKeys.COMMIT_SHA);
      RegistryCredentials credentials = context.require(StageKeys.REGISTRY_CREDENTIALS);
      context.log().line("logging in as " + credentials.username() + " with "
          + credentials.password().reveal());
      context.publish(StageKeys.IMAGE_URI,
          credentials.registry() + "/" + context.request().imageName());
      context.publish(StageKeys.IMAGE_DIGEST, "sha256:" + sha);
    };
  }
}

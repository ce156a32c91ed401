package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.Set;

/**
 * {@code test-publish}: publishes the configured {@code commit-sha} and registry credentials whose
 * password is {@code registry-password}, as a clone and an auth stage would.
 */
public final class PublishingStageFactory implements StageFactory {
  @Override
  public String id() {
    return "test-publish";
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.COMMIT_SHA, StageKeys.REGISTRY_CREDENTIALS);
  }

  @Override
  public Set<String> secretConfigPaths() {
    return Set.of("registry-password");
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) {
    String sha = config.getString("commit-sha");
    String password = config.getString("registry-password");
    return context -> {
      context.publish(StageKeys.COMMIT_SHA, sha);
      context.publish(
          StageKeys.REGISTRY_CREDENTIALS,
          new RegistryCredentials("registry.test:5000", "AWS", Secret.of(password)));
      context.log().line("published " + sha);
      // As a process's output pump or an SDK callback would: a line from a thread of its own.
      Thread helper = new Thread(() -> context.log().line("published from a helper thread"));
      helper.start();
      helper.join();
    };
  }
}

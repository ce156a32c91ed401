package dev.slipway.plugin.git;

import com.typesafe.config.Config;
import dev.slipway.plugin.git.jgit.JGitClient;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.Set;

/**
 * Provides the {@code git} stage, which clones the job's repository into its workspace with JGit
 * and publishes the checkout's root ({@link StageKeys#SOURCE_DIR}) and the commit's full sha
 * ({@link StageKeys#COMMIT_SHA}). Configured under {@code worker.stages.git}; see the plugin's
 * {@code reference.conf}.
 */
public final class GitStageFactory implements StageFactory {

  /** For {@link java.util.ServiceLoader}. */
  public GitStageFactory() {}

  @Override
  public String id() {
    return "git";
  }

  @Override
  public String description() {
    return "Clones the job's repository and branch into the workspace (JGit, shallow by default)";
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) throws StageConfigException {
    return new GitStage(GitSettings.from(config), new JGitClient());
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.SOURCE_DIR, StageKeys.COMMIT_SHA);
  }
}

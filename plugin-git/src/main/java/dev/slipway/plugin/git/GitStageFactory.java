package dev.slipway.plugin.git;

import com.typesafe.config.Config;
import dev.slipway.plugin.git.jgit.JGitClient;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.WorkerEnvironment;
import java.io.IOException;
import java.util.List;
import java.util.Set;

/**
 * Provides the {@code git} stage, which clones the job's repository into its workspace with JGit
 * and publishes the checkout's root ({@link StageKeys#SOURCE_DIR}) and the commit's full sha
 * ({@link StageKeys#COMMIT_SHA}). Configured under {@code worker.stages.git}; see the plugin's
 * {@code reference.conf}.
 */
public final class GitStageFactory implements StageFactory {
  /** Most commits a job may ask for; more is a typo, and a full history is depth 0. */
  static final int MAX_DEPTH = 1_000_000;

  static final StageOption DEPTH =
      StageOption.integer(
          "depth",
          0,
          MAX_DEPTH,
          "worker.stages.git.depth (1 unless configured)",
          "commits of history to fetch for this job; 0 = full history");

  static final StageOption SUBMODULES =
      StageOption.bool(
          "submodules",
          "worker.stages.git.submodules (false unless configured)",
          "whether this job also clones the repository's submodules, recursively; each submodule"
              + " URL must pass the URL rules and the caller's allowed-repositories");

  static final StageOption CACHE =
      StageOption.bool(
          "cache",
          "worker.stages.git.cache.enabled (true unless configured)",
          "whether this job's clone may go through the worker's mirror of the repository; false"
              + " clones from the server alone (it cannot turn on a cache the worker has off)");

  static final List<StageOption> OPTIONS = List.of(DEPTH, SUBMODULES, CACHE);

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
    GitSettings settings = GitSettings.from(config, environment);
    JGitClient client;
    try {
      client = new JGitClient(settings.cache());
    } catch (IOException | RuntimeException e) {
      throw new StageConfigException(
          "cache.dir: cannot keep the git cache in " + settings.cache().dir() + " (" + e
              + "); give a writable directory outside the job workspaces, or set"
              + " cache.enabled = false");
    }
    return new GitStage(settings, client);
  }

  @Override
  public List<StageOption> options() {
    return OPTIONS;
  }

  @Override
  public List<GitErrors> errorCodes() {
    return List.of(GitErrors.values());
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.SOURCE_DIR, StageKeys.COMMIT_SHA, StageKeys.COMMIT_TIME);
  }
}

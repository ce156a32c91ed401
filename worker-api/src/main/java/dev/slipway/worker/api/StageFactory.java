package dev.slipway.worker.api;

import com.typesafe.config.Config;
import java.util.Set;

/**
 * The service a stage plugin provides. The runtime finds implementations with
 * {@link java.util.ServiceLoader}, so an implementation needs a public no-argument constructor and a
 * {@code provides dev.slipway.worker.api.StageFactory with ...} line in its module descriptor.
 *
 * <p>The factory is asked once, at start-up, to {@linkplain #create create} its stage from the
 * configuration block {@code worker.stages.<id>}. That is where all configuration must be read and
 * validated: a worker never starts, and never registers with its orchestrator, with a stage that
 * cannot run.
 *
 * <p>New capabilities arrive in this interface as default methods, so plugins built against an
 * older version keep working.
 */
public interface StageFactory {

  /**
   * The stable id of the stage, used in {@code worker.pipeline} and as the configuration path
   * {@code worker.stages.<id>}. Lower case letters, digits and dashes, starting with a letter
   * (for example {@code git}, {@code docker-push}); unique among all plugins a worker loads.
   */
  String id();

  /**
   * Creates the stage from its configuration. The configuration is the block
   * {@code worker.stages.<id>}: the plugin's own {@code reference.conf} defaults overlaid with the
   * operator's settings, already resolved.
   *
   * <p>Read every setting here, eagerly, and report every problem at once with a
   * {@link StageConfigException}; the runtime gathers the problems of all stages and stops start-up
   * with one message that lists them.
   *
   * @param config the stage's configuration block
   * @param environment facts about the worker the stage runs in
   * @return the stage, which the runtime reuses for every job and closes at shutdown
   * @throws StageConfigException when the configuration cannot work
   */
  Stage create(Config config, WorkerEnvironment environment) throws StageConfigException;

  /**
   * The per-job options a caller may set for this stage in {@code JobRequest.stage_options}, as
   * {@code "<id>.<name>"}; the runtime refuses any other, and shows these in {@code worker
   * plugins}. A stage reads the values a job set through {@link JobContext#options()}.
   *
   * @since 0.3
   */
  default java.util.List<StageOption> options() {
    return java.util.List.of();
  }

  /**
   * Every error code the stage may fail with, usually the constants of one enum; shown by {@code
   * worker plugins} so that orchestrators and the documentation can know them without a job.
   *
   * @since 0.3
   */
  default java.util.List<? extends ErrorCode> errorCodes() {
    return java.util.List.of();
  }

  /** One line that says what the stage does, shown by {@code worker plugins}. */
  default String description() {
    return "";
  }

  /**
   * The outputs of earlier stages that this stage cannot run without. Start-up fails when no stage
   * earlier in the pipeline {@linkplain #produces produces} one of them.
   */
  default Set<StageKey<?>> requires() {
    return Set.of();
  }

  /** The outputs this stage publishes with {@link JobContext#publish}. */
  default Set<StageKey<?>> produces() {
    return Set.of();
  }

  /**
   * Configuration paths, relative to the stage's block, whose values are secrets (passwords,
   * tokens). The runtime masks them wherever it prints configuration and in every log line.
   */
  default Set<String> secretConfigPaths() {
    return Set.of();
  }
}

package dev.slipway.worker.runtime.pipeline;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.runtime.config.ConfigProblems;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.config.WorkerSettings;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Builds the pipeline from {@code worker.pipeline}: finds each stage, hands it its configuration
 * block, and checks that every output a stage requires is produced by a stage before it. Collects
 * every problem and fails once, listing them all.
 */
public final class PipelineAssembler {
  private PipelineAssembler() {}

  public static Pipeline assemble(
      Config config, WorkerSettings settings, PluginRegistry registry, WorkerEnvironment env)
      throws StartupException {
    return assemble(config, settings.pipeline(), settings.jobTimeout(), registry, env);
  }

  /**
   * Assembles the pipeline of the given stage ids.
   *
   * @param defaultTimeout the timeout of a stage whose block sets none
   */
  public static Pipeline assemble(Config config, List<String> ids, Duration defaultTimeout,
      PluginRegistry registry, WorkerEnvironment env) throws StartupException {
    ConfigProblems problems = new ConfigProblems();
    List<PipelineStage> stages = new ArrayList<>();
    Set<StageKey<?>> produced = new HashSet<>();

    for (String id : ids) {
      Optional<DiscoveredStage> found = registry.find(id);
      if (found.isEmpty()) {
        problems.add("worker.pipeline names stage '" + id + "', which no plugin provides;"
            + " discovered stages: " + registry.ids());
        continue;
      }
      DiscoveredStage plugin = found.get();
      String path = "worker.stages." + id;
      Config block = ConfigFactory.empty();
      try {
        if (config.hasPath(path)) {
          block = config.getConfig(path);
        }
      } catch (ConfigException e) {
        problems.add(e);
        continue;
      }
      Duration timeout = defaultTimeout;
      try {
        if (block.hasPath("timeout")) {
          timeout = block.getDuration("timeout");
          if (timeout.isZero() || timeout.isNegative()) {
            problems.add(path + ".timeout: " + timeout + " must be longer than zero");
          }
        }
      } catch (ConfigException e) {
        problems.add(e);
      }

      for (StageKey<?> key : plugin.factory().requires()) {
        if (!produced.contains(key)) {
          problems.add("stage '" + id + "' needs '" + key.name() + "', which no stage before it"
              + " in worker.pipeline " + ids + " produces; stages that produce it: "
              + producersOf(key, registry));
        }
      }
      produced.addAll(plugin.factory().produces());

      try {
        Stage stage = plugin.factory().create(block, env);
        if (stage == null) {
          problems.add("stage '" + id + "' (module " + plugin.moduleName()
              + ") returned no stage from create()");
        } else {
          stages.add(new PipelineStage(id, plugin, stage, timeout));
        }
      } catch (StageConfigException e) {
        for (String problem : e.problems()) {
          problems.add(path + ": " + problem);
        }
      } catch (ConfigException e) {
        problems.add(path + ": " + e.getMessage());
      } catch (RuntimeException e) {
        problems.add("stage '" + id + "' (module " + plugin.moduleName()
            + ") failed while starting: " + e);
      }
    }

    try {
      if (config.hasPath("worker.stages")) {
        for (String configured : config.getObject("worker.stages").keySet()) {
          if (registry.find(configured).isEmpty()) {
            problems.add("worker.stages." + configured + " configures a stage no plugin provides;"
                + " discovered stages: " + registry.ids());
          }
        }
      }
    } catch (ConfigException e) {
      problems.add(e);
    }

    Pipeline pipeline = new Pipeline(stages);
    if (!problems.isEmpty()) {
      pipeline.close();
      problems.throwIfAny("the pipeline cannot be assembled");
    }
    return pipeline;
  }

  private static List<String> producersOf(StageKey<?> key, PluginRegistry registry) {
    return registry.all().stream()
        .filter(s -> s.factory().produces().contains(key))
        .map(DiscoveredStage::id)
        .sorted()
        .toList();
  }
}

package dev.slipway.worker.runtime.pipeline;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.runtime.config.ConfigLoader;
import dev.slipway.worker.runtime.config.ConfigProblems;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.config.StartupPhases;
import dev.slipway.worker.runtime.config.WorkerSettings;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

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

  /** As {@link #assemble(Config, WorkerSettings, PluginRegistry, WorkerEnvironment)}, recording
   * how long each stage's {@code create} took in {@code phases}. */
  public static Pipeline assemble(Config config, WorkerSettings settings, PluginRegistry registry,
      WorkerEnvironment env, StartupPhases phases) throws StartupException {
    return assemble(config, settings.pipeline(), settings.jobTimeout(), registry, env, phases);
  }

  /**
   * Assembles the pipeline of the given stage ids.
   *
   * @param defaultTimeout the timeout of a stage whose block sets none
   */
  public static Pipeline assemble(Config config, List<String> ids, Duration defaultTimeout,
      PluginRegistry registry, WorkerEnvironment env) throws StartupException {
    return assemble(config, ids, defaultTimeout, registry, env, new StartupPhases());
  }

  private static Pipeline assemble(Config config, List<String> ids, Duration defaultTimeout,
      PluginRegistry registry, WorkerEnvironment env, StartupPhases phases)
      throws StartupException {
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
      unknownKeys(path, block, defaults(plugin, path), problems);
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

      long creating = System.nanoTime();
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
      phases.record("create " + id, System.nanoTime() - creating);
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

  /**
   * The stage's own defaults, the block {@code path} of its module's {@code reference.conf};
   * empty when the plugin ships none, and then its keys are not checked.
   */
  private static Optional<Config> defaults(DiscoveredStage plugin, String path) {
    Config reference = ConfigLoader.referenceOf(plugin.factory().getClass().getModule(),
        new ConfigProblems());
    return reference.hasPath(path) ? Optional.of(reference.getConfig(path)) : Optional.empty();
  }

  /**
   * Refuses keys of an operator's stage block that the plugin's {@code reference.conf} does not
   * have: most often a typo, which would otherwise leave the default silently in force. An
   * object that is empty in {@code reference.conf} ({@code labels {}}) takes any keys; {@code
   * timeout} is the runtime's own and allowed in every block.
   */
  private static void unknownKeys(String path, Config block, Optional<Config> defaults,
      ConfigProblems problems) {
    if (defaults.isEmpty()) {
      return;
    }
    unknownKeys(path, block.root(), defaults.get().root(), problems, true);
  }

  private static void unknownKeys(String path, ConfigObject given, ConfigObject known,
      ConfigProblems problems, boolean top) {
    for (String key : new TreeSet<>(given.keySet())) {
      ConfigValue value = given.get(key);
      ConfigValue reference = known.get(key);
      String full = path + "." + ConfigUtil.joinPath(key);
      if (reference == null) {
        if (!(top && key.equals("timeout"))) {
          problems.add(full + ": unknown key (" + value.origin().description() + "); "
              + path + " knows " + new TreeSet<>(top ? withTimeout(known.keySet())
                  : known.keySet()));
        }
      } else if (value instanceof ConfigObject inner && reference instanceof ConfigObject outer
          && !outer.isEmpty()) {
        unknownKeys(full, inner, outer, problems, false);
      }
    }
  }

  private static Set<String> withTimeout(Set<String> keys) {
    Set<String> all = new TreeSet<>(keys);
    all.add("timeout");
    return all;
  }

  private static List<String> producersOf(StageKey<?> key, PluginRegistry registry) {
    return registry.all().stream()
        .filter(s -> s.factory().produces().contains(key))
        .map(DiscoveredStage::id)
        .sorted()
        .toList();
  }
}

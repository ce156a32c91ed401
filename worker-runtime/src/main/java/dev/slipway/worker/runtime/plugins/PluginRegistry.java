package dev.slipway.worker.runtime.plugins;

import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.runtime.config.ConfigProblems;
import dev.slipway.worker.runtime.config.StartupException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.regex.Pattern;

/** Every stage the worker can run, by id, as discovered with {@link ServiceLoader}. */
public final class PluginRegistry {
  private static final Pattern STAGE_ID = Pattern.compile("[a-z][a-z0-9-]{0,62}");

  private final Map<String, DiscoveredStage> stages;

  private PluginRegistry(Map<String, DiscoveredStage> stages) {
    this.stages = Collections.unmodifiableMap(stages);
  }

  /**
   * Finds the stages visible to the runtime's own class loader: the modules of the boot layer
   * (and, when run from a class path, its {@code META-INF/services} entries).
   */
  public static PluginRegistry discover() throws StartupException {
    return discover(
        List.of(bootSource()));
  }

  /**
   * Finds the stages of the runtime's own layer and of every folder under {@code pluginsDir},
   * each folder loaded as its own module layer.
   */
  public static PluginRegistry discover(java.nio.file.Path pluginsDir) throws StartupException {
    ModuleLayer parent = java.util.Optional.ofNullable(PluginRegistry.class.getModule().getLayer())
        .orElse(ModuleLayer.boot());
    List<Source> sources = new ArrayList<>();
    sources.add(bootSource());
    sources.addAll(PluginLayers.load(pluginsDir, parent));
    return discover(sources);
  }

  /** The stages of the runtime's own layer (and class path). */
  public static Source bootSource() {
    return new Source("boot layer",
        ServiceLoader.load(StageFactory.class, PluginRegistry.class.getClassLoader()), null);
  }

  /**
   * A place stages are loaded from.
   *
   * @param name what to call it in messages: a plugin folder or the boot layer
   * @param loader the service loader over it
   * @param layer the plugin folder's own layer, whose providers alone count; null for the boot
   *     layer
   */
  public record Source(String name, ServiceLoader<StageFactory> loader, ModuleLayer layer) {}

  /** Finds the stages of several sources; ids must be unique across all of them. */
  public static PluginRegistry discover(List<Source> sources) throws StartupException {
    ConfigProblems problems = new ConfigProblems();
    Map<String, DiscoveredStage> stages = new LinkedHashMap<>();
    for (Source source : sources) {
      Iterator<ServiceLoader.Provider<StageFactory>> it = source.loader().stream().iterator();
      int errors = 0;
      while (errors < 100) {
        StageFactory factory;
        try {
          if (!it.hasNext()) {
            break;
          }
          ServiceLoader.Provider<StageFactory> provider = it.next();
          if (source.layer() != null && provider.type().getModule().getLayer() != source.layer()) {
            continue; // a provider of a parent layer, seen again through this one
          }
          factory = provider.get();
        } catch (ServiceConfigurationError e) {
          problems.add("a stage plugin in " + source.name() + " cannot be loaded: "
              + e.getMessage() + (e.getCause() == null ? "" : " (" + e.getCause() + ")"));
          errors++;
          continue;
        }
        String id;
        try {
          id = factory.id();
        } catch (RuntimeException e) {
          problems.add("stage factory " + factory.getClass().getName() + " in " + source.name()
              + " failed in id(): " + e);
          continue;
        }
        Module module = factory.getClass().getModule();
        String moduleName = module.isNamed() ? module.getName() : "unnamed";
        String version = Optional.ofNullable(module.getDescriptor())
            .flatMap(d -> d.rawVersion()).orElse("unknown");
        DiscoveredStage discovered =
            new DiscoveredStage(id, factory, moduleName, version, source.name());
        if (id == null || !STAGE_ID.matcher(id).matches()) {
          problems.add("stage factory " + factory.getClass().getName() + " in " + source.name()
              + " has id '" + id + "'; an id is lower case letters, digits and dashes,"
              + " starting with a letter");
          continue;
        }
        DiscoveredStage previous = stages.putIfAbsent(id, discovered);
        if (previous != null && previous.factory().getClass() != factory.getClass()) {
          problems.add("stage id '" + id + "' is provided twice: by " + describe(previous)
              + " and by " + describe(discovered) + "; remove one of them");
        }
      }
    }
    problems.throwIfAny("the stage plugins cannot be loaded");
    return new PluginRegistry(stages);
  }

  private static String describe(DiscoveredStage stage) {
    return "module " + stage.moduleName() + " (" + stage.source() + ")";
  }

  public Optional<DiscoveredStage> find(String id) {
    return Optional.ofNullable(stages.get(id));
  }

  /** All stages, in discovery order. */
  public List<DiscoveredStage> all() {
    return new ArrayList<>(stages.values());
  }

  /** The discovered ids, sorted, for messages. */
  public List<String> ids() {
    return stages.keySet().stream().sorted().toList();
  }
}

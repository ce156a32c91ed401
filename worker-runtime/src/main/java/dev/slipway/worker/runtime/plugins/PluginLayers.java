package dev.slipway.worker.runtime.plugins;

import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.runtime.config.ConfigProblems;
import dev.slipway.worker.runtime.config.StartupException;
import java.io.IOException;
import java.lang.module.Configuration;
import java.lang.module.FindException;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.lang.module.ResolutionException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Loads each folder under a plugins directory as its own {@link ModuleLayer} over the runtime's,
 * as Layrry does: the folder's modules are resolved with the runtime's own modules taking
 * precedence (so every plugin shares the runtime's {@code worker-api} and SLF4J), and each folder
 * gets one class loader, so two plugins may carry different versions of the same library.
 */
public final class PluginLayers {
  private PluginLayers() {}

  /**
   * One source per plugin folder, in name order; a directory that does not exist gives none.
   *
   * @throws StartupException naming every folder that cannot be loaded, and why
   */
  public static List<PluginRegistry.Source> load(Path pluginsDir, ModuleLayer parent)
      throws StartupException {
    if (!Files.isDirectory(pluginsDir)) {
      return List.of();
    }
    List<Path> folders;
    try (Stream<Path> children = Files.list(pluginsDir)) {
      folders = children.filter(Files::isDirectory).sorted().toList();
    } catch (IOException e) {
      throw new StartupException("the plugins directory cannot be read",
          List.of(pluginsDir + ": " + e));
    }
    // The folders are independent, and reading their jars' descriptors (every entry of an
    // automatic module's jar) was the largest part of start-up after the JVM's own: they load in
    // parallel, and their sources and problems are kept in folder order.
    List<Future<Object>> loading = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(
        Math.max(1, Math.min(folders.size(), Runtime.getRuntime().availableProcessors())), r -> {
          Thread thread = new Thread(r, "plugin-loader");
          thread.setDaemon(true);
          return thread;
        });
    try {
      for (Path folder : folders) {
        loading.add(pool.submit(() -> loadFolder(folder, parent)));
      }
      ConfigProblems problems = new ConfigProblems();
      List<PluginRegistry.Source> sources = new ArrayList<>();
      for (Future<Object> folder : loading) {
        Object loaded = result(folder);
        if (loaded instanceof PluginRegistry.Source source) {
          sources.add(source);
        } else {
          problems.add((String) loaded);
        }
      }
      problems.throwIfAny("the stage plugins cannot be loaded");
      return sources;
    } finally {
      pool.shutdownNow();
    }
  }

  /** The folder's source, or the problem that stops it loading. */
  private static Object loadFolder(Path folder, ModuleLayer parent) {
    try {
      ModuleLayer layer = layerOf(folder, parent);
      // Only this layer's providers: ServiceLoader would also walk up into the parent.
      ServiceLoader<StageFactory> loader = ServiceLoader.load(layer, StageFactory.class);
      return new PluginRegistry.Source("plugin folder " + folder, loader, layer);
    } catch (FindException | ResolutionException | LayerInstantiationException
        | SecurityException e) {
      return "plugin folder " + folder + " cannot be loaded: " + e.getMessage() + hint(e);
    } catch (IllegalStateException e) {
      return "plugin folder " + folder + ": " + e.getMessage();
    }
  }

  private static Object result(Future<Object> folder) {
    try {
      return folder.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while loading the plugin folders", e);
    } catch (ExecutionException e) {
      // Anything but the failures load() reports is a bug, thrown as it would have been.
      if (e.getCause() instanceof RuntimeException runtime) {
        throw runtime;
      }
      if (e.getCause() instanceof Error error) {
        throw error;
      }
      throw new IllegalStateException(e.getCause());
    }
  }

  private static ModuleLayer layerOf(Path folder, ModuleLayer parent) {
    ModuleFinder finder = ModuleFinder.of(folder);
    Set<String> roots = finder.findAll().stream()
        .map(ModuleReference::descriptor)
        .map(d -> d.name())
        .collect(Collectors.toSet());
    if (roots.isEmpty()) {
      throw new IllegalStateException("holds no jar; a plugin folder holds the plugin's jar and"
          + " the jars only it needs");
    }
    Configuration configuration =
        parent.configuration().resolve(ModuleFinder.of(), finder, roots);
    return parent.defineModulesWithOneLoader(configuration,
        PluginLayers.class.getClassLoader());
  }

  private static String hint(RuntimeException e) {
    String text = String.valueOf(e.getMessage());
    if (text.startsWith("Module java.") || text.startsWith("Module jdk.")) {
      return " (a JDK module the runtime lacks: plugins can only use the JDK modules of the image,"
          + " listed in its release file; link the image with it)";
    }
    if (text.contains("not found")) {
      return " (a jar the plugin needs is missing from its folder)";
    }
    if (text.contains("more than one module") || text.contains("same package")
        || text.contains("contain package")) {
      return " (two jars hold the same package: a split package)";
    }
    return "";
  }

}

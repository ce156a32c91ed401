package dev.slipway.worker.runtime.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigResolveOptions;
import com.typesafe.config.ConfigSyntax;
import com.typesafe.config.ConfigValueFactory;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

/**
 * Builds the worker's effective configuration. From strongest to weakest:
 *
 * <ol>
 *   <li>system properties ({@code -Dworker.port=50060});
 *   <li>the original worker's environment variables: {@code WORKER_ID}, {@code ORCHESTRATOR_ADDR},
 *       {@code AWS_REGION} (which fills {@code worker.region} only when no file sets it);
 *   <li>the file given with {@code --config}, else {@code application.conf} in the working
 *       directory, if present;
 *   <li>the runtime's {@code reference.conf}, then each plugin module's own {@code reference.conf}.
 * </ol>
 *
 * Substitutions such as {@code ${?MY_TOKEN}} see the {@code .env} file too, not only the process
 * environment.
 */
public final class ConfigLoader {
  private ConfigLoader() {}

  /**
   * Loads and resolves the configuration.
   *
   * @param configFile the operator's file, or empty to look for {@code application.conf}
   * @param workingDirectory where {@code application.conf} is looked for
   * @param environment the environment variables ({@code .env} merged in)
   * @param systemProperties the JVM's system properties
   * @param pluginModules the modules whose {@code reference.conf} supply stage defaults
   */
  public static Config load(
      Optional<Path> configFile,
      Path workingDirectory,
      Environment environment,
      Properties systemProperties,
      List<Module> pluginModules)
      throws StartupException {
    ConfigProblems problems = new ConfigProblems();

    Config reference = referenceOf(ConfigLoader.class.getModule(), problems);
    for (Module module : pluginModules) {
      reference = reference.withFallback(referenceOf(module, problems));
    }

    Config application = ConfigFactory.empty();
    Optional<Path> file =
        configFile.or(
            () ->
                Optional.of(workingDirectory.resolve("application.conf"))
                    .filter(Files::isRegularFile));
    if (file.isPresent()) {
      Path path = file.get();
      if (!Files.isRegularFile(path)) {
        problems.add("config file " + path + " does not exist or is not a regular file");
      } else {
        try {
          application =
              ConfigFactory.parseFile(
                  path.toFile(), ConfigParseOptions.defaults().setAllowMissing(false));
        } catch (ConfigException e) {
          problems.add(e);
        }
      }
    }

    Config fromEnvironment = environmentOverrides(environment);
    Config regionFallback =
        environment
            .get("AWS_REGION")
            .map(r -> ConfigFactory.empty().withValue("worker.region", ConfigValueFactory
                .fromAnyRef(r, "environment variable AWS_REGION")))
            .orElse(ConfigFactory.empty());

    Config properties = ConfigFactory.parseProperties(
        filterWorkerProperties(systemProperties),
        ConfigParseOptions.defaults().setOriginDescription("system properties"));

    Config unresolved =
        properties
            .withFallback(fromEnvironment)
            .withFallback(withoutBlankRegion(application))
            .withFallback(regionFallback)
            .withFallback(reference);

    problems.throwIfAny("the configuration could not be read");
    try {
      // Variables of the .env file are a fallback scope for ${?VAR} substitutions.
      Config environmentScope =
          ConfigValueFactory.fromMap(new HashMap<>(environment.asMap()), "environment").toConfig();
      return unresolved
          .withFallback(environmentScope)
          .resolve(ConfigResolveOptions.defaults().setUseSystemEnvironment(false))
          .withOnlyPath("worker");
    } catch (ConfigException e) {
      problems.add(e);
      problems.throwIfAny("the configuration could not be resolved");
      throw new AssertionError("unreachable");
    }
  }

  /** AWS_REGION fills worker.region where the operator's file left it unset or blank. */
  private static Config withoutBlankRegion(Config application) {
    try {
      if (application.hasPath("worker.region")
          && application.getValue("worker.region").unwrapped().toString().isBlank()) {
        return application.withoutPath("worker.region");
      }
    } catch (ConfigException e) {
      // An unresolved or odd value is reported when settings are read.
    }
    return application;
  }

  private static Config environmentOverrides(Environment environment) {
    Map<String, String> mapping = Map.of("WORKER_ID", "worker.id",
        "ORCHESTRATOR_ADDR", "worker.orchestrator.address");
    Config config = ConfigFactory.empty();
    for (Map.Entry<String, String> entry : mapping.entrySet()) {
      Optional<String> value = environment.get(entry.getKey());
      if (value.isPresent()) {
        config = config.withValue(entry.getValue(), ConfigValueFactory.fromAnyRef(
            value.get(), "environment variable " + entry.getKey()));
      }
    }
    return config;
  }

  private static Properties filterWorkerProperties(Properties systemProperties) {
    Properties filtered = new Properties();
    for (String name : systemProperties.stringPropertyNames()) {
      if (name.startsWith("worker.")) {
        filtered.setProperty(name, systemProperties.getProperty(name));
      }
    }
    return filtered;
  }

  /** The runtime's own defaults: which keys of {@code worker} exist, and their types. */
  public static Config runtimeReference() {
    return referenceOf(ConfigLoader.class.getModule(), new ConfigProblems()).resolve();
  }

  /**
   * A module's own {@code reference.conf}. Read through the module rather than the class path so
   * that each plugin layer contributes exactly its own defaults.
   */
  public static Config referenceOf(Module module, ConfigProblems problems) {
    // Each start reads every module's file two or three times (defaults, key checks); a module's
    // resources never change, so one parse each. Weak: the layers of stopped workers may go.
    synchronized (REFERENCES) {
      Config parsed = REFERENCES.get(module);
      if (parsed != null) {
        return parsed;
      }
    }
    ConfigProblems own = new ConfigProblems();
    Config parsed = parseReference(module, own);
    if (own.isEmpty()) {
      synchronized (REFERENCES) {
        REFERENCES.put(module, parsed);
      }
    } else {
      problems.addAll(own.asList());
    }
    return parsed;
  }

  private static final Map<Module, Config> REFERENCES = new java.util.WeakHashMap<>();

  private static Config parseReference(Module module, ConfigProblems problems) {
    try (InputStream in = module.getResourceAsStream("reference.conf")) {
      if (in == null) {
        return ConfigFactory.empty();
      }
      try (Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
        return ConfigFactory.parseReader(
            reader,
            ConfigParseOptions.defaults()
                .setSyntax(ConfigSyntax.CONF)
                .setOriginDescription("reference.conf of module " + module.getName()));
      }
    } catch (IOException | ConfigException e) {
      problems.add("reference.conf of module " + module.getName() + " cannot be read: "
          + e.getMessage());
      return ConfigFactory.empty();
    }
  }
}

package dev.slipway.plugin.buildkit;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.WorkerEnvironment;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The {@code worker.stages.buildkit} block, read and checked eagerly. {@link #from} reports every
 * problem at once; see {@code reference.conf} for what each key means.
 *
 * @param timeout how long one build may run before it is stopped
 * @param script build.sh, absolute
 * @param backend how the image is built
 * @param dockerCli the docker CLI, absolute
 * @param dockerHost the engine, when configured; else the worker's {@code DOCKER_HOST}
 * @param addr buildkitd's address (buildctl only), when configured
 * @param tls mTLS files for buildkitd (buildctl only)
 * @param cacheImports registry references to import cache from
 * @param cacheExport a registry reference to export the cache to (buildctl only)
 * @param network the network of RUN steps
 * @param target the Dockerfile stage to build, when configured
 * @param platform the platform to build for, when configured
 * @param labels extra labels for every image, sorted by key
 * @param removeImage the deprecated {@code remove-image}, read so that old configurations still
 *     start, and otherwise ignored: the job-private name is always removed after the job
 */
record BuildkitSettings(
    Duration timeout,
    Path script,
    Backend backend,
    Path dockerCli,
    Optional<String> dockerHost,
    Optional<String> addr,
    Tls tls,
    List<String> cacheImports,
    Optional<String> cacheExport,
    Network network,
    Optional<String> target,
    Optional<String> platform,
    Map<String, String> labels,
    boolean removeImage) {

  /** The labels the stage sets itself on every image; configuration may not set them. */
  static final String LABEL_SOURCE = "org.opencontainers.image.source";

  static final String LABEL_REVISION = "org.opencontainers.image.revision";
  static final String LABEL_CREATED = "org.opencontainers.image.created";
  private static final Set<String> OWN_LABELS = Set.of(LABEL_SOURCE, LABEL_REVISION, LABEL_CREATED);

  private static final Set<String> KEYS =
      Set.of(
          "timeout", "script", "backend", "docker-cli", "docker-host", "addr", "tls", "cache",
          "network", "target", "platform", "labels", "remove-image");
  private static final Set<String> TLS_KEYS = Set.of("ca-cert", "cert", "key");
  private static final Set<String> CACHE_KEYS = Set.of("import", "export");

  private static final Pattern DOCKER_HOST =
      Pattern.compile("(unix|tcp|ssh|fd)://\\S+");
  private static final Pattern BUILDKIT_ADDR =
      Pattern.compile("(unix|tcp|ssh|docker-container|podman-container|kube-pod|nerdctl-container)://\\S+");
  private static final Pattern TARGET = Pattern.compile("[A-Za-z][A-Za-z0-9._-]*");
  private static final Pattern PLATFORM = Pattern.compile("[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?");
  private static final Pattern LABEL_KEY = Pattern.compile("[^=\\p{Cntrl}\\s]+");

  BuildkitSettings {
    cacheImports = List.copyOf(cacheImports);
    labels = Collections.unmodifiableMap(new TreeMap<>(labels));
  }

  /** The build backends: how build.sh builds. */
  enum Backend {
    /** {@code DOCKER_BUILDKIT=1 docker build} against the local engine's embedded BuildKit. */
    DOCKER,
    /** {@code buildctl} against a remote buildkitd; the result is loaded into the local engine. */
    BUILDCTL;

    String configName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** The network of the build's RUN steps. */
  enum Network {
    /** The engine's default network (Docker: its bridge, NATed; buildctl: buildkitd's default). */
    DEFAULT,
    /** The host's network namespace: everything on the worker's loopback is in reach. */
    HOST,
    /** No network at all, only the step's own loopback. */
    NONE;

    String configName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * What an operator should know about this configuration, logged once at start-up: each entry is
   * a warning, none stops the worker.
   */
  List<String> warnings() {
    List<String> warnings = new ArrayList<>();
    if (network == Network.HOST) {
      warnings.add("worker.stages.buildkit.network = host: the RUN steps of every job's Dockerfile share this"
          + " host's network, so any job can reach what listens on its loopback and private interfaces:"
          + " the worker's own gRPC and metrics ports, a local registry or Docker socket on TCP, other"
          + " services of the host, and the cloud's instance metadata endpoint (169.254.169.254) with the"
          + " node's credentials. Use network = default (the engine's own network) or none unless every"
          + " Dockerfile this worker builds is trusted"
          + (backend == Backend.BUILDCTL ? "; with buildctl this also needs buildkitd's network.host entitlement"
              : ""));
    }
    if (!removeImage) {
      warnings.add("worker.stages.buildkit.remove-image = false is ignored: a build is tagged with a job-private"
          + " name (slipway.local/<job>-<random>:build) that is always removed after the job; remove the key");
    }
    return List.copyOf(warnings);
  }

  /**
   * mTLS files for buildkitd; each is empty when not configured.
   *
   * @param caCert the CA certificate that signed buildkitd's certificate
   * @param cert the worker's client certificate
   * @param key the client certificate's private key
   */
  record Tls(Optional<Path> caCert, Optional<Path> cert, Optional<Path> key) {
    static final Tls NONE = new Tls(Optional.empty(), Optional.empty(), Optional.empty());

    boolean isEmpty() {
      return caCert.isEmpty() && cert.isEmpty() && key.isEmpty();
    }
  }

  /**
   * Reads the block.
   *
   * @param config the {@code worker.stages.buildkit} block, defaults included
   * @param environment where relative paths resolve ({@link WorkerEnvironment#home()})
   * @throws StageConfigException listing every problem found
   */
  static BuildkitSettings from(Config config, WorkerEnvironment environment)
      throws StageConfigException {
    Reader r = new Reader(config, environment.home());
    r.unknownKeys("", config, KEYS);

    Duration timeout = r.read("timeout", config::getDuration, Duration.ofMinutes(30));
    if (timeout.isNegative() || timeout.isZero()) {
      r.problem("timeout", "must be positive, got " + timeout);
    }
    Path script = r.executable("script");
    Backend backend = r.oneOf("backend", Backend.class, Backend.DOCKER);
    Path dockerCli = r.executable("docker-cli");
    Optional<String> dockerHost = r.optionalMatching("docker-host", DOCKER_HOST,
        "a Docker host such as 'unix:///var/run/docker.sock' or 'tcp://127.0.0.1:2376'");
    Optional<String> addr = r.optionalMatching("addr", BUILDKIT_ADDR,
        "a buildkitd address such as 'tcp://buildkitd:1234' or 'unix:///run/buildkit/buildkitd.sock'");

    Tls tls = Tls.NONE;
    if (r.isObject("tls")) {
      r.unknownKeys("tls.", config.getConfig("tls"), TLS_KEYS);
      tls =
          new Tls(
              r.optionalReadableFile("tls.ca-cert"),
              r.optionalReadableFile("tls.cert"),
              r.optionalReadableFile("tls.key"));
      if (tls.cert().isPresent() != tls.key().isPresent()) {
        r.problem("tls", "cert and key go together: set both or neither");
      }
    }

    List<String> cacheImports = List.of();
    Optional<String> cacheExport = Optional.empty();
    if (r.isObject("cache")) {
      r.unknownKeys("cache.", config.getConfig("cache"), CACHE_KEYS);
      cacheImports = r.read("cache.import", config::getStringList, List.of());
      for (String ref : cacheImports) {
        ImageReference.problem(ref)
            .ifPresent(p -> r.problem("cache.import", "'" + ref + "': " + p));
      }
      cacheExport = r.optionalString("cache.export");
      cacheExport.flatMap(ImageReference::problem).ifPresent(p -> r.problem("cache.export", p));
    }

    Network network = r.oneOf("network", Network.class, Network.DEFAULT);
    Optional<String> target = r.optionalMatching("target", TARGET, "a Dockerfile stage name");
    Optional<String> platform =
        r.optionalMatching("platform", PLATFORM, "one platform such as 'linux/amd64' or 'linux/arm64/v8'");
    Map<String, String> labels = r.labels("labels");
    boolean removeImage = r.read("remove-image", config::getBoolean, true);

    if (backend == Backend.DOCKER) {
      String why = "only the buildctl backend uses it (backend = docker)";
      addr.ifPresent(a -> r.problem("addr", why + "; the docker backend talks to docker-host"));
      if (!tls.isEmpty()) {
        r.problem("tls", why + "; for a TLS Docker engine set DOCKER_CERT_PATH and DOCKER_TLS_VERIFY");
      }
      cacheExport.ifPresent(
          c -> r.problem("cache.export", why + "; the engine's embedded BuildKit cannot export a cache"));
    }
    r.throwIfAny();
    return new BuildkitSettings(
        timeout, script, backend, dockerCli, dockerHost, addr, tls, cacheImports, cacheExport,
        network, target, platform, labels, removeImage);
  }

  /** Reads keys and gathers problems instead of stopping at the first. */
  private static final class Reader {
    private final Config config;
    private final Path home;
    private final List<String> problems = new ArrayList<>();

    Reader(Config config, Path home) {
      this.config = config;
      this.home = home;
    }

    void problem(String key, String message) {
      problems.add(key + ": " + message);
    }

    void throwIfAny() throws StageConfigException {
      if (!problems.isEmpty()) {
        throw new StageConfigException(problems);
      }
    }

    <T> T read(String key, Function<String, T> getter, T fallback) {
      try {
        return getter.apply(key);
      } catch (ConfigException.Missing e) {
        problem(key, "is missing; the plugin's reference.conf should set it");
      } catch (ConfigException e) {
        problem(key, e.getMessage());
      }
      return fallback;
    }

    boolean isObject(String key) {
      if (!config.hasPath(key)) {
        return false;
      }
      ConfigValue value = config.getValue(key);
      if (value.valueType() != ConfigValueType.OBJECT) {
        problem(key, "must be an object { ... }, got " + value.valueType().name().toLowerCase(Locale.ROOT)
            + " (" + value.origin().description() + ")");
        return false;
      }
      return true;
    }

    void unknownKeys(String prefix, Config block, Set<String> known) {
      for (String key : new TreeSet<>(block.root().keySet())) {
        if (!known.contains(key)) {
          problem(prefix + key, "unknown key (" + block.getValue(ConfigUtil.joinPath(key)).origin().description()
              + "); the buildkit stage knows " + new TreeSet<>(known));
        }
      }
    }

    Optional<String> optionalString(String key) {
      String value = read(key, config::getString, "").strip();
      return value.isEmpty() ? Optional.empty() : Optional.of(value);
    }

    Optional<String> optionalMatching(String key, Pattern pattern, String expected) {
      Optional<String> value = optionalString(key);
      if (value.isPresent() && !pattern.matcher(value.get()).matches()) {
        problem(key, "'" + value.get() + "' is not " + expected);
      }
      return value;
    }

    <E extends Enum<E>> E oneOf(String key, Class<E> type, E fallback) {
      String value = read(key, config::getString, fallback.name());
      for (E constant : type.getEnumConstants()) {
        if (constant.name().equalsIgnoreCase(value)) {
          return constant;
        }
      }
      problem(key, "'" + value + "' is not one of "
          + Arrays.stream(type.getEnumConstants())
              .map(c -> c.name().toLowerCase(Locale.ROOT))
              .collect(Collectors.joining(", ", "[", "]")));
      return fallback;
    }

    Path path(String key, String value) {
      try {
        Path path = Path.of(value);
        return (path.isAbsolute() ? path : home.resolve(path)).normalize();
      } catch (InvalidPathException e) {
        problem(key, "'" + value + "' is not a valid path: " + e.getReason());
        return null;
      }
    }

    Path executable(String key) {
      Optional<String> value = optionalString(key);
      if (value.isEmpty()) {
        problem(key, "is empty; give the path of the program");
        return null;
      }
      Path path = path(key, value.get());
      if (path != null && !(Files.isRegularFile(path) && Files.isExecutable(path))) {
        problem(key, path + (Files.exists(path) ? " is not an executable file" : " does not exist")
            + (value.get().equals(path.toString()) ? "" : " (resolved against the worker's home " + home + ")"));
      }
      return path;
    }

    Optional<Path> optionalReadableFile(String key) {
      Optional<String> value = optionalString(key);
      if (value.isEmpty()) {
        return Optional.empty();
      }
      Path path = path(key, value.get());
      if (path != null && !(Files.isRegularFile(path) && Files.isReadable(path))) {
        problem(key, path + (Files.exists(path) ? " is not a readable file" : " does not exist"));
      }
      return Optional.ofNullable(path);
    }

    Map<String, String> labels(String key) {
      if (!isObject(key)) {
        return Map.of();
      }
      Map<String, String> labels = new LinkedHashMap<>();
      Config block = config.getConfig(key);
      for (var entry : block.entrySet()) {
        // Unquoted dotted keys (a.b = x) arrive as paths; quoted ones ("a.b" = x) as one element.
        String name = String.join(".", ConfigUtil.splitPath(entry.getKey()));
        ConfigValue value = entry.getValue();
        if (value.valueType() == ConfigValueType.OBJECT || value.valueType() == ConfigValueType.LIST
            || value.valueType() == ConfigValueType.NULL) {
          problem(key + "." + name, "must be a string");
          continue;
        }
        if (!LABEL_KEY.matcher(name).matches()) {
          problem(key + "." + name, "is not a valid label key (no '=', spaces or control characters)");
        } else if (OWN_LABELS.contains(name)) {
          problem(key + "." + name, "is set by the stage on every image and cannot be configured");
        }
        labels.put(name, String.valueOf(value.unwrapped()));
      }
      return labels;
    }
  }
}

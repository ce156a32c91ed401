package dev.slipway.plugin.buildkit;

import com.typesafe.config.Config;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageSettings;
import dev.slipway.worker.api.WorkerEnvironment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The {@code worker.stages.buildkit} block, read and checked eagerly through worker-api's {@link
 * StageSettings}. {@link #from} reports every problem at once; see {@code reference.conf} for what
 * each key means. {@code target} and {@code platform} are the defaults of the per-job options of
 * the same names ({@link BuildChoices}).
 *
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
 * @param platform the platform (or comma-separated platforms, buildctl only) to build for, when
 *     configured
 * @param labels extra labels for every image, sorted by key
 * @param removeImage the deprecated {@code remove-image}, read so that old configurations still
 *     start, and otherwise ignored: the job-private name is always removed after the job
 */
record BuildkitSettings(
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

  private static final Pattern DOCKER_HOST =
      Pattern.compile("(unix|tcp|ssh|fd)://\\S+");
  private static final Pattern BUILDKIT_ADDR =
      Pattern.compile("(unix|tcp|ssh|docker-container|podman-container|kube-pod|nerdctl-container)://\\S+");
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
   * Reads the block. Unknown keys and {@code timeout} are the runtime's: it has refused the first
   * and checked the second before a plugin sees the block, and it stops a stage that runs too long.
   *
   * @param config the {@code worker.stages.buildkit} block, defaults included
   * @param environment where relative paths resolve ({@link WorkerEnvironment#home()})
   * @throws StageConfigException listing every problem found
   */
  static BuildkitSettings from(Config config, WorkerEnvironment environment)
      throws StageConfigException {
    StageSettings r = new StageSettings(config, environment.home());

    Optional<Path> script = r.executable("script");
    Backend backend = r.oneOf("backend", Backend.class, Backend.DOCKER);
    Optional<Path> dockerCli = r.executable("docker-cli");
    Optional<String> dockerHost = r.optionalMatching("docker-host", DOCKER_HOST,
        "a Docker host such as 'unix:///var/run/docker.sock' or 'tcp://127.0.0.1:2376'");
    Optional<String> addr = r.optionalMatching("addr", BUILDKIT_ADDR,
        "a buildkitd address such as 'tcp://buildkitd:1234' or 'unix:///run/buildkit/buildkitd.sock'");

    Tls tls = Tls.NONE;
    if (r.isObject("tls")) {
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
      cacheImports = r.stringList("cache.import");
      for (String ref : cacheImports) {
        ImageReference.problem(ref)
            .ifPresent(p -> r.problem("cache.import", "'" + ref + "': " + p));
      }
      cacheExport = r.optionalString("cache.export");
      cacheExport.flatMap(ImageReference::problem).ifPresent(p -> r.problem("cache.export", p));
    }

    Network network = r.oneOf("network", Network.class, Network.DEFAULT);
    Optional<String> target = r.optionalMatching("target", BuildChoices.TARGET, BuildChoices.TARGET_EXPECTED);
    Optional<String> platform =
        r.optionalMatching("platform", BuildChoices.PLATFORM, BuildChoices.PLATFORM_EXPECTED);
    Map<String, String> labels = r.stringMap("labels");
    for (String name : labels.keySet()) {
      if (!LABEL_KEY.matcher(name).matches()) {
        r.problem("labels." + name, "is not a valid label key (no '=', spaces or control characters)");
      } else if (OWN_LABELS.contains(name)) {
        r.problem("labels." + name, "is set by the stage on every image and cannot be configured");
      }
    }
    boolean removeImage = r.bool("remove-image");

    if (backend == Backend.DOCKER) {
      String why = "only the buildctl backend uses it (backend = docker)";
      addr.ifPresent(a -> r.problem("addr", why + "; the docker backend talks to docker-host"));
      if (!tls.isEmpty()) {
        r.problem("tls", why + "; for a TLS Docker engine set DOCKER_CERT_PATH and DOCKER_TLS_VERIFY");
      }
      cacheExport.ifPresent(
          c -> r.problem("cache.export", why + "; the engine's embedded BuildKit cannot export a cache"));
      platform.filter(p -> p.contains(",")).ifPresent(p -> r.problem("platform", "'" + p + "' is a list;"
          + " the docker backend builds one platform at a time: give one, or use backend = buildctl"));
    }
    r.throwIfAny();
    return new BuildkitSettings(
        script.orElseThrow(), backend, dockerCli.orElseThrow(), dockerHost, addr, tls, cacheImports,
        cacheExport, network, target, platform, labels, removeImage);
  }
}

package dev.slipway.plugin.dockerpush;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.WorkerEnvironment;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * The {@code worker.stages.docker-push} block, read and checked eagerly. {@link #from} reports
 * every problem at once; {@code reference.conf} says what each key means. {@link #toString()}
 * masks the password (it is a {@link Secret}).
 *
 * @param timeout how long the stage may run in one job
 * @param engine where the Docker engine is, and from which setting that came
 * @param registry the registry to push to when neither an auth stage nor {@code image_name} names one
 * @param auth static credentials, when configured; always with a {@code registry} they belong to
 * @param insecureRegistries registries spoken to over plain HTTP besides loopback, canonical form
 * @param tokenRealmHosts hosts besides the registry's own that may receive its credentials as its
 *     token service, lower case
 * @param retry how transient registry failures are retried
 * @param progressInterval least time between two progress reports of one push
 * @param removeLocalTags the deprecated {@code remove-local-tags}, read so that old configurations
 *     still start, and otherwise ignored: every local name a job makes is removed or put back
 * @param registryTimeout how long one request to the registry's HTTP API may take
 */
record DockerPushSettings(
    Duration timeout,
    Engine engine,
    Optional<String> registry,
    Optional<StaticAuth> auth,
    Set<String> insecureRegistries,
    Set<String> tokenRealmHosts,
    Retry retry,
    Duration progressInterval,
    boolean removeLocalTags,
    Duration registryTimeout) {

  /** The engine when neither the configuration nor DOCKER_HOST names one. */
  static final String DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

  private static final Set<String> KEYS =
      Set.of(
          "timeout", "docker-host", "registry", "auth", "insecure-registries", "token-realm-hosts",
          "retry", "progress-interval", "remove-local-tags", "registry-timeout");
  private static final Set<String> AUTH_KEYS = Set.of("username", "password");
  private static final Set<String> RETRY_KEYS = Set.of("max-attempts", "initial-backoff", "max-backoff");
  private static final Duration MIN_PROGRESS_INTERVAL = Duration.ofMillis(100);
  private static final Duration MIN_REGISTRY_TIMEOUT = Duration.ofSeconds(1);
  private static final int MAX_ATTEMPTS = 20;

  DockerPushSettings {
    if (auth.isPresent() && registry.isEmpty()) {
      // from() reports this as a problem; here it guards the rule for settings built otherwise.
      throw new IllegalArgumentException("static auth needs the registry it belongs to");
    }
    insecureRegistries = Collections.unmodifiableSet(new TreeSet<>(insecureRegistries));
    tokenRealmHosts = Collections.unmodifiableSet(new TreeSet<>(tokenRealmHosts));
  }

  /**
   * What an operator should know about this configuration, logged once at start-up: each entry is
   * a warning, none stops the worker.
   */
  List<String> warnings() {
    if (removeLocalTags) {
      return List.of();
    }
    return List.of("worker.stages.docker-push.remove-local-tags = false is ignored: the destination name is"
        + " tagged only for the push and removed (or given back to the image that had it) right after it,"
        + " and the build's private name is removed after the job; remove the key");
  }

  /**
   * The Docker engine.
   *
   * @param host {@code unix:///path} or {@code tcp://host:port}
   * @param origin where the value came from, for messages
   * @param tlsCertPath for a {@code tcp} engine with {@code DOCKER_TLS_VERIFY=1}: the directory of
   *     {@code ca.pem}, {@code cert.pem} and {@code key.pem} ({@code DOCKER_CERT_PATH})
   */
  record Engine(String host, String origin, Optional<Path> tlsCertPath) {}

  /**
   * Credentials from the configuration, for teams without an auth stage.
   *
   * @param username the user name
   * @param password the password or token; masked by {@code toString}
   */
  record StaticAuth(String username, Secret password) {}

  /**
   * Retries of transient registry failures (HTTP 429 and 5xx, connection resets): attempt {@code
   * n} waits {@code min(initialBackoff * 2^(n-2), maxBackoff)} after attempt {@code n-1}.
   *
   * @param maxAttempts attempts in all, the first included; 1 means no retry
   * @param initialBackoff the wait before the second attempt
   * @param maxBackoff the longest wait between two attempts
   */
  record Retry(int maxAttempts, Duration initialBackoff, Duration maxBackoff) {
    /** The wait before attempt {@code attempt} (2 or more). */
    Duration backoffBefore(int attempt) {
      Duration wait = initialBackoff;
      for (int i = 2; i < attempt && wait.compareTo(maxBackoff) < 0; i++) {
        wait = wait.multipliedBy(2);
      }
      return wait.compareTo(maxBackoff) > 0 ? maxBackoff : wait;
    }
  }

  /**
   * Reads the block.
   *
   * @param config the {@code worker.stages.docker-push} block, defaults included
   * @param environment the worker's environment ({@code DOCKER_HOST}, {@code DOCKER_TLS_VERIFY},
   *     {@code DOCKER_CERT_PATH})
   * @throws StageConfigException listing every problem found
   */
  static DockerPushSettings from(Config config, WorkerEnvironment environment)
      throws StageConfigException {
    Reader r = new Reader(config);
    r.unknownKeys("", config, KEYS);

    Duration timeout = r.positiveDuration("timeout", Duration.ofMinutes(30), Duration.ofSeconds(1));
    Engine engine = engine(r, environment);

    Optional<String> registry = r.optionalString("registry");
    registry.ifPresent(reg -> r.registryProblem("registry", reg));

    Optional<StaticAuth> auth = Optional.empty();
    if (r.isObject("auth")) {
      r.unknownKeys("auth.", config.getConfig("auth"), AUTH_KEYS);
      Optional<String> username = r.optionalString("auth.username");
      // Not stripped: a password may legitimately start or end with a space.
      String password = r.read("auth.password", config::getString, "");
      if (username.isPresent() && password.isEmpty()) {
        r.problem("auth.password", "is empty while auth.username is '" + username.get()
            + "'; set it, typically from the environment: password = ${?REGISTRY_PASSWORD}");
      } else if (username.isEmpty() && !password.isEmpty()) {
        r.problem("auth.username", "is empty while auth.password is set; set both or neither");
      } else if (username.isPresent()) {
        auth = Optional.of(new StaticAuth(username.get(), Secret.of(password)));
      }
      // Static credentials belong to one registry, named here: without it they would go to
      // whichever registry a job's image_name names.
      if ((username.isPresent() || !password.isEmpty()) && registry.isEmpty()) {
        r.problem("auth", "static credentials are set but registry is not; set registry to the host they"
            + " belong to (e.g. registry = \"registry.example.com\"): they are sent to that registry"
            + " only. For a registry with an auth stage such as ecr, remove auth instead");
      }
    }

    Set<String> insecure = new LinkedHashSet<>();
    for (String entry : r.read("insecure-registries", config::getStringList, List.<String>of())) {
      if (r.registryProblem("insecure-registries", entry)) {
        insecure.add(ImageName.canonicalRegistry(entry));
      }
    }

    Set<String> tokenRealmHosts = new LinkedHashSet<>();
    for (String entry : r.read("token-realm-hosts", config::getStringList, List.<String>of())) {
      if (r.hostProblem("token-realm-hosts", entry.strip())) {
        tokenRealmHosts.add(entry.strip().toLowerCase(Locale.ROOT));
      }
    }

    Retry retry = new Retry(3, Duration.ofSeconds(1), Duration.ofSeconds(10));
    if (r.isObject("retry")) {
      r.unknownKeys("retry.", config.getConfig("retry"), RETRY_KEYS);
      int maxAttempts = r.read("retry.max-attempts", config::getInt, 3);
      if (maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS) {
        r.problem("retry.max-attempts", "must be between 1 (no retry) and " + MAX_ATTEMPTS + ", got " + maxAttempts);
      }
      Duration initial = r.positiveDuration("retry.initial-backoff", retry.initialBackoff(), Duration.ofMillis(1));
      Duration max = r.positiveDuration("retry.max-backoff", retry.maxBackoff(), Duration.ofMillis(1));
      if (max.compareTo(initial) < 0) {
        r.problem("retry.max-backoff", "(" + max + ") must not be shorter than retry.initial-backoff (" + initial + ")");
      }
      retry = new Retry(maxAttempts, initial, max);
    }

    Duration progressInterval =
        r.positiveDuration("progress-interval", Duration.ofMillis(500), MIN_PROGRESS_INTERVAL);
    boolean removeLocalTags = r.read("remove-local-tags", config::getBoolean, true);
    Duration registryTimeout =
        r.positiveDuration("registry-timeout", Duration.ofSeconds(30), MIN_REGISTRY_TIMEOUT);

    r.throwIfAny();
    return new DockerPushSettings(
        timeout, engine, registry, auth, insecure, tokenRealmHosts, retry, progressInterval,
        removeLocalTags, registryTimeout);
  }

  private static Engine engine(Reader r, WorkerEnvironment environment) {
    Optional<String> configured = r.optionalString("docker-host");
    String host;
    String origin;
    if (configured.isPresent()) {
      host = configured.get();
      origin = "docker-host";
    } else {
      Optional<String> fromEnv = environment.env("DOCKER_HOST").map(String::strip).filter(s -> !s.isEmpty());
      host = fromEnv.orElse(DEFAULT_DOCKER_HOST);
      origin = fromEnv.isPresent() ? "DOCKER_HOST" : "the default";
    }
    String key = "docker-host";
    String why = origin.equals("DOCKER_HOST") ? " (from the worker's DOCKER_HOST)" : "";
    String scheme = "";
    try {
      URI uri = new URI(host);
      scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
      boolean valid =
          (scheme.equals("unix") && uri.getPath() != null && uri.getPath().startsWith("/"))
              || (scheme.equals("tcp") && uri.getHost() != null && uri.getPort() > 0);
      if (!valid) {
        r.problem(key, "'" + host + "'" + why + " is not an engine address the httpclient5 transport"
            + " can reach; give unix:///path/to/docker.sock or tcp://host:port");
      }
    } catch (URISyntaxException e) {
      r.problem(key, "'" + host + "'" + why + " is not a URI: " + e.getReason());
    }
    Optional<Path> certPath = Optional.empty();
    boolean tlsVerify = environment.env("DOCKER_TLS_VERIFY").map(String::strip)
        .filter(v -> !v.isEmpty() && !v.equals("0") && !v.equalsIgnoreCase("false")).isPresent();
    if (tlsVerify && scheme.equals("tcp")) {
      Optional<String> dir = environment.env("DOCKER_CERT_PATH").map(String::strip).filter(s -> !s.isEmpty());
      if (dir.isEmpty()) {
        r.problem(key, "DOCKER_TLS_VERIFY is set for " + host + " but DOCKER_CERT_PATH is not; name"
            + " the directory with ca.pem, cert.pem and key.pem");
      } else {
        try {
          Path path = Path.of(dir.get());
          for (String file : List.of("ca.pem", "cert.pem", "key.pem")) {
            if (!Files.isReadable(path.resolve(file))) {
              r.problem(key, "DOCKER_CERT_PATH " + path + " has no readable " + file);
            }
          }
          certPath = Optional.of(path);
        } catch (InvalidPathException e) {
          r.problem(key, "DOCKER_CERT_PATH '" + dir.get() + "' is not a path: " + e.getReason());
        }
      }
    }
    return new Engine(host, origin, certPath);
  }

  /** Reads keys and gathers problems instead of stopping at the first. */
  private static final class Reader {
    private final Config config;
    private final List<String> problems = new ArrayList<>();

    Reader(Config config) {
      this.config = config;
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

    Optional<String> optionalString(String key) {
      String value = read(key, config::getString, "").strip();
      return value.isEmpty() ? Optional.empty() : Optional.of(value);
    }

    Duration positiveDuration(String key, Duration fallback, Duration least) {
      Duration value = read(key, config::getDuration, fallback);
      if (value.compareTo(least) < 0) {
        problem(key, "must be at least " + human(least) + ", got " + human(value));
        return fallback;
      }
      return value;
    }

    /** Checks a registry host; false (and a problem) when it is not one. */
    boolean registryProblem(String key, String value) {
      if (value.contains("://")) {
        problem(key, "'" + value + "' has a scheme; give the host[:port] alone, e.g. '"
            + value.substring(value.indexOf("://") + 3).replaceAll("/.*", "") + "'");
        return false;
      }
      if (!ImageName.REGISTRY.matcher(value).matches()) {
        problem(key, "'" + value + "' is not a registry host[:port], e.g. 'registry.example.com' or"
            + " '123456789012.dkr.ecr.eu-west-1.amazonaws.com' or '127.0.0.1:5000'");
        return false;
      }
      return true;
    }

    /** Checks a host name without port; false (and a problem) when it is not one. */
    boolean hostProblem(String key, String value) {
      if (!ImageName.HOST.matcher(value).matches()) {
        String bare = value.replaceFirst("^[a-zA-Z][a-zA-Z0-9+.-]*://", "").replaceAll("[/?#].*", "")
            .replaceFirst(":[0-9]*$", "");
        problem(key, "'" + value + "' is not a host name; give the host alone, without scheme, port or"
            + " path, e.g. '" + (ImageName.HOST.matcher(bare).matches() ? bare : "auth.docker.io") + "'");
        return false;
      }
      return true;
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
          problem(prefix + key, "unknown key (" + block.root().get(key).origin().description()
              + "); the docker-push stage knows " + new TreeSet<>(known));
        }
      }
    }
  }

  static String human(Duration d) {
    if (d.toMillis() % 1000 != 0 || d.isZero()) {
      return d.toMillis() + "ms";
    }
    long s = d.toSeconds();
    return s % 60 == 0 && s > 0 ? (s / 60) + "m" : s + "s";
  }
}

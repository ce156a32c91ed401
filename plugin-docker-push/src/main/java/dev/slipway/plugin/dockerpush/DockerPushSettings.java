package dev.slipway.plugin.dockerpush;

import com.typesafe.config.Config;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageSettings;
import dev.slipway.worker.api.WorkerEnvironment;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The {@code worker.stages.docker-push} block, read and checked eagerly through worker-api's
 * {@link StageSettings}. {@link #from} reports every problem at once; {@code reference.conf} says
 * what each key means. {@link #toString()}
 * masks the password (it is a {@link Secret}).
 *
 * @param engine where the Docker engine is, and from which setting that came
 * @param registry the registry to push to when neither an auth stage nor {@code image_name} names one
 * @param auth static credentials, when configured; always with a {@code registry} they belong to
 * @param insecureRegistries registries spoken to over plain HTTP besides loopback, canonical form
 * @param tokenRealmHosts hosts besides the registry's own that may receive its credentials as its
 *     token service, lower case
 * @param retry how transient registry failures are retried
 * @param progressInterval least time between two progress reports of one push
 * @param removeLocalTags the deprecated {@code remove-local-tags}, read so that old configurations
 *     still start, and otherwise ignored: a job keeps its pushed names only when it sets the
 *     per-job option {@code docker-push.remove-local-tags=false}
 * @param registryTimeout how long one request to the registry's HTTP API may take
 * @param digestCheck whether the digest the registry answered to the push is taken as it is, or
 *     asked for again with a manifest request
 */
record DockerPushSettings(
    Engine engine,
    Optional<String> registry,
    Optional<StaticAuth> auth,
    Set<String> insecureRegistries,
    Set<String> tokenRealmHosts,
    Retry retry,
    Duration progressInterval,
    boolean removeLocalTags,
    Duration registryTimeout,
    DigestSource digestCheck) {

  /** Where a pushed tag's digest is confirmed. */
  enum DigestSource {
    /**
     * The registry's own answer to the manifest upload, which the engine reports at the end of the
     * push; a manifest request only when the engine reported none.
     */
    PUSH,
    /** Always a manifest request to the registry after the push, as a pull would see it. */
    REGISTRY
  }

  /** The engine when neither the configuration nor DOCKER_HOST names one. */
  static final String DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

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
    return List.of("worker.stages.docker-push.remove-local-tags = false is ignored: the destination names are"
        + " tagged only for the push and removed (or given back to the image that had them) right after it,"
        + " unless a job sets the per-job option docker-push.remove-local-tags=false in stage_options; remove"
        + " the key");
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
   * Reads the block. Unknown keys and {@code timeout} are the runtime's to check, before this runs.
   *
   * @param config the {@code worker.stages.docker-push} block, defaults included
   * @param environment the worker's environment ({@code DOCKER_HOST}, {@code DOCKER_TLS_VERIFY},
   *     {@code DOCKER_CERT_PATH})
   * @throws StageConfigException listing every problem found
   */
  static DockerPushSettings from(Config config, WorkerEnvironment environment)
      throws StageConfigException {
    StageSettings r = new StageSettings(config, environment.home());
    Engine engine = engine(r, environment);

    Optional<String> registry = r.optionalString("registry");
    registry.ifPresent(reg -> registryProblem(r, "registry", reg));

    Optional<StaticAuth> auth = Optional.empty();
    if (r.isObject("auth")) {
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
    for (String entry : r.stringList("insecure-registries")) {
      if (registryProblem(r, "insecure-registries", entry)) {
        insecure.add(ImageName.canonicalRegistry(entry));
      }
    }

    Set<String> tokenRealmHosts = new LinkedHashSet<>();
    for (String entry : r.stringList("token-realm-hosts")) {
      if (hostProblem(r, "token-realm-hosts", entry)) {
        tokenRealmHosts.add(entry.toLowerCase(Locale.ROOT));
      }
    }

    Retry retry = new Retry(3, Duration.ofSeconds(1), Duration.ofSeconds(10));
    if (r.isObject("retry")) {
      int maxAttempts = r.integer("retry.max-attempts", 1, MAX_ATTEMPTS);
      Duration initial = r.duration("retry.initial-backoff", Duration.ofMillis(1));
      Duration max = r.duration("retry.max-backoff", Duration.ofMillis(1));
      if (max.compareTo(initial) < 0) {
        r.problem("retry.max-backoff", "(" + StageSettings.human(max) + ") must not be shorter than"
            + " retry.initial-backoff (" + StageSettings.human(initial) + ")");
      }
      retry = new Retry(maxAttempts, initial, max);
    }

    Duration progressInterval = r.duration("progress-interval", MIN_PROGRESS_INTERVAL);
    boolean removeLocalTags = r.bool("remove-local-tags");
    Duration registryTimeout = r.duration("registry-timeout", MIN_REGISTRY_TIMEOUT);
    DigestSource digestCheck = r.oneOf("digest-check", DigestSource.class, DigestSource.PUSH);

    r.throwIfAny();
    return new DockerPushSettings(
        engine, registry, auth, insecure, tokenRealmHosts, retry, progressInterval, removeLocalTags,
        registryTimeout, digestCheck);
  }

  private static Engine engine(StageSettings r, WorkerEnvironment environment) {
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

  /** Checks a registry host; false (and a problem) when it is not one. */
  private static boolean registryProblem(StageSettings r, String key, String value) {
    if (value.contains("://")) {
      r.problem(key, "'" + value + "' has a scheme; give the host[:port] alone, e.g. '"
          + value.substring(value.indexOf("://") + 3).replaceAll("/.*", "") + "'");
      return false;
    }
    if (!ImageName.REGISTRY.matcher(value).matches()) {
      r.problem(key, "'" + value + "' is not a registry host[:port], e.g. 'registry.example.com' or"
          + " '123456789012.dkr.ecr.eu-west-1.amazonaws.com' or '127.0.0.1:5000'");
      return false;
    }
    return true;
  }

  /** Checks a host name without port; false (and a problem) when it is not one. */
  private static boolean hostProblem(StageSettings r, String key, String value) {
    if (!ImageName.HOST.matcher(value).matches()) {
      String bare = value.replaceFirst("^[a-zA-Z][a-zA-Z0-9+.-]*://", "").replaceAll("[/?#].*", "")
          .replaceFirst(":[0-9]*$", "");
      r.problem(key, "'" + value + "' is not a host name; give the host alone, without scheme, port or"
          + " path, e.g. '" + (ImageName.HOST.matcher(bare).matches() ? bare : "auth.docker.io") + "'");
      return false;
    }
    return true;
  }
}

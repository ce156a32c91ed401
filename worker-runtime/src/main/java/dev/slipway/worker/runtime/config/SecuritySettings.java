package dev.slipway.worker.runtime.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import javax.security.auth.x500.X500Principal;

/**
 * Who may call the worker and over what: server TLS, mutual TLS, the callers and their scopes, the
 * worker-wide policy, and the TLS of the channel to the orchestrator. Read with the rest of the
 * {@code worker} block so every problem is reported at start-up, at once. Only paths are read
 * here; the files themselves are loaded (and their problems reported) by the security package.
 *
 * @param insecure {@code worker.insecure}: serve other hosts without TLS and without callers
 * @param tls the server's TLS, if configured
 * @param callers the known callers; empty means every caller is trusted alike
 * @param openMethods services or {@code service/method} names that need no credentials
 * @param policy the worker-wide rules every caller's request must also pass
 * @param orchestratorTls the TLS of the channel to the orchestrator, if enabled
 */
public record SecuritySettings(
    boolean insecure,
    Optional<ServerTls> tls,
    List<CallerSpec> callers,
    List<String> openMethods,
    Scopes policy,
    Optional<ClientTls> orchestratorTls) {

  /**
   * The server's certificate and, for mutual TLS, the CA its clients' certificates must chain to.
   *
   * @param certFile PEM certificate chain
   * @param keyFile PEM private key (PKCS#8)
   * @param clientCaFile PEM CA certificates; present: mutual TLS, a client without a certificate
   *     signed by one of them is refused in the handshake
   * @param reloadInterval how often the files are checked for changes
   */
  public record ServerTls(Path certFile, Path keyFile, Optional<Path> clientCaFile,
      Duration reloadInterval) {}

  /**
   * TLS of an outgoing channel.
   *
   * @param caFile PEM CA certificates to trust; empty: the JDK's trusted CAs
   * @param certFile the worker's client certificate, for an orchestrator that requires mTLS
   * @param keyFile the key of {@code certFile}
   * @param serverName the name the orchestrator's certificate must carry, if not its host
   * @param reloadInterval how often the files are checked for changes
   */
  public record ClientTls(Optional<Path> caFile, Optional<Path> certFile, Optional<Path> keyFile,
      Optional<String> serverName, Duration reloadInterval) {}

  /** How a caller proves who it is. */
  public enum IdentityKind {
    TOKEN_FILE("token-file"),
    CERTIFICATE_SUBJECT("certificate-subject"),
    CERTIFICATE_SAN("certificate-san");

    private final String key;

    IdentityKind(String key) {
      this.key = key;
    }

    public String key() {
      return key;
    }
  }

  /**
   * Glob rules: {@code *} matches within one path segment, {@code **} across segments.
   *
   * @param repositories over the normalised repository URL ({@code https://host/path})
   * @param pushRepositories over {@code registry-host/repository}
   */
  public record Scopes(List<String> repositories, List<String> pushRepositories) {}

  /**
   * One entry of {@code worker.callers}.
   *
   * @param name the caller's name, in logs and metrics
   * @param kind how it is identified
   * @param identity the token file's path, the certificate subject or the SAN
   * @param scopes what it may build and push
   * @param admin whether it sees and cancels every caller's jobs
   */
  public record CallerSpec(String name, IdentityKind kind, String identity, Scopes scopes,
      boolean admin) {}

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  private static final Set<String> CALLER_KEYS = Set.of("name", "token-file",
      "certificate-subject", "certificate-san", "allowed-repositories",
      "allowed-push-repositories", "admin");

  /** Whether the worker authenticates its callers at all. */
  public boolean authenticates() {
    return !callers.isEmpty();
  }

  static SecuritySettings from(Config config, Path workingDirectory, String bindAddress,
      ConfigProblems problems) {
    boolean insecure = WorkerSettings.read(problems, () -> config.getBoolean("worker.insecure"), false);
    Duration reload = reloadInterval(config, problems, "worker.tls.reload-interval");
    Optional<Path> cert = file(config, problems, workingDirectory, "worker.tls.cert-file");
    Optional<Path> key = file(config, problems, workingDirectory, "worker.tls.key-file");
    Optional<Path> clientCa =
        file(config, problems, workingDirectory, "worker.tls.client-ca-file");
    Optional<ServerTls> tls = Optional.empty();
    if (cert.isPresent() && key.isPresent()) {
      tls = Optional.of(new ServerTls(cert.get(), key.get(), clientCa, reload));
    } else if (cert.isPresent() || key.isPresent()) {
      problems.add("worker.tls: cert-file and key-file go together; set both (PEM certificate"
          + " chain and PKCS#8 key) or neither");
    } else if (clientCa.isPresent()) {
      problems.add("worker.tls.client-ca-file is set but cert-file and key-file are not: mutual"
          + " TLS needs the server's own certificate too");
    }

    List<CallerSpec> callers = callers(config, workingDirectory, problems);
    List<String> openMethods =
        WorkerSettings.read(problems, () -> config.getStringList("worker.open-methods"), List.of());
    Scopes policy = new Scopes(
        patterns(config, problems, "worker.policy.allowed-repositories"),
        patterns(config, problems, "worker.policy.allowed-push-repositories"));

    Optional<ClientTls> orchestratorTls = Optional.empty();
    if (WorkerSettings.read(problems, () -> config.getBoolean("worker.orchestrator.tls.enabled"), false)) {
      Optional<Path> ocert =
          file(config, problems, workingDirectory, "worker.orchestrator.tls.cert-file");
      Optional<Path> okey =
          file(config, problems, workingDirectory, "worker.orchestrator.tls.key-file");
      if (ocert.isPresent() != okey.isPresent()) {
        problems.add("worker.orchestrator.tls: cert-file and key-file go together; set both"
            + " (for an orchestrator that requires mutual TLS) or neither");
      }
      String serverName = WorkerSettings.read(problems,
          () -> config.getString("worker.orchestrator.tls.server-name").trim(), "");
      orchestratorTls = Optional.of(new ClientTls(
          file(config, problems, workingDirectory, "worker.orchestrator.tls.ca-file"),
          ocert, okey, Optional.of(serverName).filter(s -> !s.isEmpty()),
          reloadInterval(config, problems, "worker.orchestrator.tls.reload-interval")));
    } else {
      for (String k : List.of("ca-file", "cert-file", "key-file", "server-name")) {
        String path = "worker.orchestrator.tls." + k;
        if (!WorkerSettings.read(problems, () -> config.getString(path).trim(), "").isEmpty()) {
          problems.add(WorkerSettings.origin(config, path) + path + " is set but worker.orchestrator.tls.enabled"
              + " is false; set enabled = true to use TLS to the orchestrator");
        }
      }
    }

    if (!insecure && tls.isEmpty() && callers.isEmpty() && !isLoopback(bindAddress)) {
      problems.add("worker.bind-address = \"" + bindAddress + "\" serves other hosts, but the"
          + " worker has neither TLS (worker.tls.cert-file and key-file) nor caller"
          + " authentication (worker.callers): anyone who reaches the port could run jobs with"
          + " the worker's credentials. Set worker.tls and worker.callers, bind to 127.0.0.1,"
          + " or set worker.insecure = true to accept that");
    }
    return new SecuritySettings(insecure, tls, callers, List.copyOf(openMethods), policy,
        orchestratorTls);
  }

  /** Whether a bind address serves this host only. 0.0.0.0 and unresolvable names do not. */
  public static boolean isLoopback(String bindAddress) {
    try {
      return InetAddress.getByName(bindAddress).isLoopbackAddress();
    } catch (UnknownHostException | SecurityException e) {
      return false;
    }
  }

  private static List<CallerSpec> callers(Config config, Path workingDirectory,
      ConfigProblems problems) {
    List<CallerSpec> callers = new ArrayList<>();
    List<? extends ConfigObject> entries;
    try {
      entries = config.getObjectList("worker.callers");
    } catch (ConfigException e) {
      problems.add(e);
      return callers;
    }
    Set<String> names = new HashSet<>();
    Set<String> identities = new HashSet<>();
    for (int i = 0; i < entries.size(); i++) {
      ConfigObject object = entries.get(i);
      Config entry = object.toConfig();
      String where = object.origin().description() + ": worker.callers[" + i + "]";
      for (String key : object.keySet()) {
        if (!CALLER_KEYS.contains(key)) {
          problems.add(where + "." + key + " is not a caller setting; known: "
              + new java.util.TreeSet<>(CALLER_KEYS));
        }
      }
      String name = string(entry, "name");
      if (name.isEmpty()) {
        problems.add(where + ": name is required (1-64 letters, digits, '.', '_' or '-')");
      } else if (!NAME.matcher(name).matches()) {
        problems.add(where + ": name '" + name
            + "' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
      } else if (!names.add(name)) {
        problems.add(where + ": name '" + name + "' is given to two callers; names are unique");
      }
      String label = where + " ('" + name + "')";
      List<IdentityKind> kinds = new ArrayList<>();
      for (IdentityKind kind : IdentityKind.values()) {
        if (!string(entry, kind.key()).isEmpty()) {
          kinds.add(kind);
        }
      }
      if (kinds.size() != 1) {
        problems.add(label + ": give exactly one of token-file, certificate-subject or"
            + " certificate-san" + (kinds.isEmpty() ? "" : "; found " + kinds.stream()
                .map(IdentityKind::key).toList()));
        continue;
      }
      IdentityKind kind = kinds.get(0);
      String identity = string(entry, kind.key());
      switch (kind) {
        case TOKEN_FILE -> {
          try {
            identity = workingDirectory.resolve(identity).toAbsolutePath().normalize().toString();
          } catch (InvalidPathException e) {
            problems.add(label + ": token-file '" + identity + "' is not a path");
          }
          if (!Files.isReadable(Path.of(identity))) {
            problems.add(label + ": token-file " + identity + " does not exist or cannot be"
                + " read; it must hold the caller's bearer token");
          } else if (tokenLength(Path.of(identity)) < MIN_TOKEN_LENGTH) {
            problems.add(label + ": token-file " + identity + " holds no token, or one shorter"
                + " than " + MIN_TOKEN_LENGTH + " characters; put one random token in it (e.g."
                + " openssl rand -hex 32)");
          }
        }
        case CERTIFICATE_SUBJECT -> {
          try {
            // Canonical form, so "CN=ci, O=acme" and "cn=ci,o=acme" name the same caller.
            identity = new X500Principal(identity).getName(X500Principal.CANONICAL);
          } catch (IllegalArgumentException e) {
            problems.add(label + ": certificate-subject '" + identity
                + "' is not a distinguished name, e.g. \"CN=ci,O=acme\"");
          }
        }
        case CERTIFICATE_SAN -> { }
      }
      if (!identities.add(kind + ":" + identity)) {
        problems.add(label + ": " + kind.key() + " is also another caller's; each caller needs"
            + " an identity of its own");
      }
      List<String> repos = entry.hasPath("allowed-repositories")
          ? patterns(entry, problems, "allowed-repositories", label) : List.of();
      List<String> push = entry.hasPath("allowed-push-repositories")
          ? patterns(entry, problems, "allowed-push-repositories", label) : List.of();
      boolean admin = false;
      try {
        admin = entry.hasPath("admin") && entry.getBoolean("admin");
      } catch (ConfigException e) {
        problems.add(label + ": admin must be true or false");
      }
      callers.add(new CallerSpec(name, kind, identity, new Scopes(repos, push), admin));
    }
    return List.copyOf(callers);
  }

  /** Shorter bearer tokens can be guessed. */
  public static final int MIN_TOKEN_LENGTH = 16;

  private static int tokenLength(Path file) {
    try {
      return Files.readString(file, java.nio.charset.StandardCharsets.UTF_8).strip().length();
    } catch (java.io.IOException | RuntimeException e) {
      return 0;
    }
  }

  private static String string(Config entry, String key) {
    try {
      return entry.hasPath(key) ? entry.getString(key).trim() : "";
    } catch (ConfigException e) {
      return "";
    }
  }

  private static List<String> patterns(Config config, ConfigProblems problems, String path) {
    return patterns(config, problems, path, WorkerSettings.origin(config, path) + path);
  }

  private static List<String> patterns(Config config, ConfigProblems problems, String path,
      String label) {
    ConfigValue value = config.getValue(path);
    if (value.valueType() != ConfigValueType.LIST) {
      problems.add(label + (label.endsWith(path) ? "" : "." + path)
          + " must be a list of glob patterns, e.g. [\"https://github.com/acme/**\"]");
      return List.of();
    }
    List<String> patterns = new ArrayList<>();
    for (String p : WorkerSettings.read(problems, () -> config.getStringList(path), List.<String>of())) {
      if (p.isBlank()) {
        problems.add(label + (label.endsWith(path) ? "" : "." + path)
            + " has an empty pattern; use \"**\" for everything or remove it");
      } else {
        patterns.add(p.trim());
      }
    }
    return List.copyOf(patterns);
  }

  private static Optional<Path> file(Config config, ConfigProblems problems, Path dir,
      String path) {
    String value = WorkerSettings.read(problems, () -> config.getString(path).trim(), "");
    if (value.isEmpty()) {
      return Optional.empty();
    }
    try {
      return Optional.of(dir.resolve(value).toAbsolutePath().normalize());
    } catch (InvalidPathException e) {
      problems.add(WorkerSettings.origin(config, path) + path + ": '" + value + "' is not a valid path");
      return Optional.empty();
    }
  }

  private static Duration reloadInterval(Config config, ConfigProblems problems, String path) {
    Duration d = WorkerSettings.read(problems, () -> config.getDuration(path), Duration.ofSeconds(10));
    if (d.isNegative() || d.isZero()) {
      problems.add(WorkerSettings.origin(config, path) + path + ": " + d + " must be longer than zero");
      return Duration.ofSeconds(10);
    }
    return d;
  }
}

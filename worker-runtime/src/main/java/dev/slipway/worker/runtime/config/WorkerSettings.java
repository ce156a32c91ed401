package dev.slipway.worker.runtime.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigValue;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * The runtime's own settings, read eagerly from the {@code worker} block so that every problem
 * surfaces at start-up, all at once.
 *
 * @param id the worker's id
 * @param region the worker's region, if any
 * @param bindAddress the address the gRPC server binds to
 * @param port the gRPC port
 * @param advertiseAddress the address sent to the orchestrator
 * @param labels labels sent at registration
 * @param orchestrator where and how to register
 * @param workspaceRoot where job workspaces are made, absolute
 * @param maxConcurrentJobs how many jobs run at once
 * @param jobTimeout the longest a job may run
 * @param shutdownGracePeriod how long a running job may go on after SIGTERM
 * @param pipeline the ordered stage ids
 * @param logFormat {@code text} or {@code json}
 * @param logLevel the root log level
 * @param metrics where Prometheus metrics are served, if at all
 * @param security TLS, callers and their scopes, the worker-wide policy
 * @param health the plaintext health-only listener for probes, if enabled
 * @param limits what one request may ask and one job may produce
 * @param stopping how stopping a job and cleaning up after it are bounded
 * @param jobs what is kept of jobs' events and of finished jobs
 */
public record WorkerSettings(
    String id,
    Optional<String> region,
    String bindAddress,
    int port,
    String advertiseAddress,
    Map<String, String> labels,
    Orchestrator orchestrator,
    Path workspaceRoot,
    int maxConcurrentJobs,
    Duration jobTimeout,
    Duration shutdownGracePeriod,
    List<String> pipeline,
    String logFormat,
    String logLevel,
    Metrics metrics,
    SecuritySettings security,
    Optional<Health> health,
    Limits limits,
    Stopping stopping,
    Jobs jobs) {

  /**
   * What is kept of jobs, for WatchJob and GetJob.
   *
   * @param bufferEvents events kept per job for replay
   * @param bufferBytes bytes of events kept per job for replay
   * @param retention how long a finished job is kept
   * @param retained how many finished jobs are kept at most
   * @param retainedBytes how many bytes of finished jobs' events are kept at most
   */
  public record Jobs(int bufferEvents, long bufferBytes, Duration retention, int retained,
      long retainedBytes) {}

  /**
   * How stopping is bounded.
   *
   * @param stopGrace how long a cancelled or timed-out stage may take to return before its
   *     processes are killed and, a moment later, the job ends without it
   * @param cleanupTimeout how long each cleanup (a stage's, the workspace's) may take
   * @param stuckLimit how long an abandoned thread may stay stuck before health says NOT_SERVING
   */
  public record Stopping(Duration stopGrace, Duration cleanupTimeout, Duration stuckLimit) {}

  /**
   * A second, plaintext listener that serves only {@code grpc.health.v1.Health}, for probes that
   * cannot speak TLS (the kubelet's gRPC probe). It serves nothing a caller could abuse.
   *
   * @param bindAddress the address it binds
   * @param port its port; 0 for any free one
   */
  public record Health(String bindAddress, int port) {}

  /**
   * Metrics settings.
   *
   * @param enabled whether {@code /metrics} is served
   * @param bindAddress the address it binds
   * @param port its port; 0 for any free one
   */
  public record Metrics(boolean enabled, String bindAddress, int port) {}

  /**
   * Registration settings.
   *
   * @param address host:port of the orchestrator, empty for standalone mode
   * @param initialBackoff the first retry delay
   * @param maxBackoff the cap on retry delays
   * @param callTimeout the deadline of one Register, Heartbeat or Deregister call
   * @param heartbeatInterval how often a registered worker sends a heartbeat
   */
  public record Orchestrator(
      Optional<String> address, Duration initialBackoff, Duration maxBackoff,
      Duration callTimeout, Duration heartbeatInterval) {}

  private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9a-fA-F:.]+]|[A-Za-z0-9.-]+):\\d{1,5}");

  /**
   * Reads and checks every setting.
   *
   * @param config the resolved configuration
   * @param reference the runtime's own reference configuration, to spot unknown keys
   * @param workingDirectory what relative paths resolve against
   */
  public static WorkerSettings from(Config config, Config reference, Path workingDirectory)
      throws StartupException {
    ConfigProblems problems = new ConfigProblems();
    unknownKeys(config, reference, problems);

    String id = read(problems, () -> config.getString("worker.id").trim(), "");
    if (id.isEmpty()) {
      id = "worker-" + UUID.randomUUID().toString().substring(0, 8);
    } else if (!ID.matcher(id).matches()) {
      problems.add(origin(config, "worker.id") + "worker.id: '" + id
          + "' must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    String regionValue = read(problems, () -> config.getString("worker.region").trim(), "");
    String bindAddress = read(problems, () -> config.getString("worker.bind-address").trim(), "");
    int port = read(problems, () -> config.getInt("worker.port"), 0);
    if (port < 0 || port > 65535) {
      problems.add(origin(config, "worker.port") + "worker.port: " + port
          + " is not a TCP port; use 1-65535 (default 50052), or 0 for any free port");
    }
    String advertise =
        read(problems, () -> config.getString("worker.advertise-address").trim(), "");
    if (advertise.isEmpty()) {
      advertise = detectAddress();
    }
    Map<String, String> labels = readLabels(config, problems);

    String orchestratorAddress =
        read(problems, () -> config.getString("worker.orchestrator.address").trim(), "");
    if (!orchestratorAddress.isEmpty() && !HOST_PORT.matcher(orchestratorAddress).matches()) {
      problems.add(origin(config, "worker.orchestrator.address")
          + "worker.orchestrator.address: '" + orchestratorAddress
          + "' must be host:port, e.g. orchestrator.internal:50051");
    }
    Duration initialBackoff =
        positive(config, problems, "worker.orchestrator.retry-initial-backoff");
    Duration maxBackoff = positive(config, problems, "worker.orchestrator.retry-max-backoff");
    if (maxBackoff.compareTo(initialBackoff) < 0) {
      problems.add("worker.orchestrator.retry-max-backoff (" + maxBackoff
          + ") must not be shorter than retry-initial-backoff (" + initialBackoff + ")");
    }
    Duration callTimeout = positive(config, problems, "worker.orchestrator.call-timeout");
    Duration heartbeatInterval =
        positive(config, problems, "worker.orchestrator.heartbeat-interval");

    Path workspaceRoot = workingDirectory;
    String root = read(problems, () -> config.getString("worker.workspace-root").trim(), "");
    if (root.isEmpty()) {
      problems.add("worker.workspace-root must not be empty (default tmp/repos)");
    } else {
      try {
        workspaceRoot = workingDirectory.resolve(root).toAbsolutePath().normalize();
      } catch (InvalidPathException e) {
        problems.add(origin(config, "worker.workspace-root") + "worker.workspace-root: '" + root
            + "' is not a valid path: " + e.getReason());
      }
    }
    int maxJobs = read(problems, () -> config.getInt("worker.max-concurrent-jobs"), 1);
    if (maxJobs < 1) {
      problems.add(origin(config, "worker.max-concurrent-jobs") + "worker.max-concurrent-jobs: "
          + maxJobs + " must be at least 1");
    }
    Duration jobTimeout = positive(config, problems, "worker.job-timeout");
    Duration grace = read(problems, () -> config.getDuration("worker.shutdown-grace-period"),
        Duration.ZERO);
    if (grace.isNegative()) {
      problems.add("worker.shutdown-grace-period must not be negative");
    }
    List<String> pipeline =
        read(problems, () -> config.getStringList("worker.pipeline"), List.of());
    if (config.hasPath("worker.pipeline") && pipeline.isEmpty()) {
      problems.add(origin(config, "worker.pipeline")
          + "worker.pipeline is empty; name at least one stage, e.g. [git, buildkit]");
    }
    List<String> seen = new ArrayList<>();
    for (String stage : pipeline) {
      if (seen.contains(stage)) {
        problems.add("worker.pipeline names stage '" + stage + "' twice: " + pipeline);
      }
      seen.add(stage);
    }
    String format = read(problems, () -> config.getString("worker.log.format"), "text")
        .toLowerCase(Locale.ROOT);
    if (!List.of("text", "json").contains(format)) {
      problems.add(origin(config, "worker.log.format") + "worker.log.format: '" + format
          + "' is not one of [text, json]");
    }
    String level = read(problems, () -> config.getString("worker.log.level"), "INFO")
        .toUpperCase(Locale.ROOT);
    if (!List.of("TRACE", "DEBUG", "INFO", "WARN", "ERROR").contains(level)) {
      problems.add(origin(config, "worker.log.level") + "worker.log.level: '" + level
          + "' is not one of [TRACE, DEBUG, INFO, WARN, ERROR]");
    }

    boolean metricsEnabled = read(problems, () -> config.getBoolean("worker.metrics.enabled"), false);
    String metricsBind =
        read(problems, () -> config.getString("worker.metrics.bind-address").trim(), "");
    int metricsPort = read(problems, () -> config.getInt("worker.metrics.port"), 0);
    if (metricsPort < 0 || metricsPort > 65535) {
      problems.add(origin(config, "worker.metrics.port") + "worker.metrics.port: " + metricsPort
          + " is not a TCP port; use 1-65535 (default 9464), or 0 for any free port");
    } else if (metricsEnabled && metricsPort != 0 && metricsPort == port
        && metricsBind.equals(bindAddress)) {
      problems.add("worker.metrics.port: " + metricsPort + " is also worker.port; use another");
    }

    SecuritySettings security =
        SecuritySettings.from(config, workingDirectory, bindAddress, problems);
    boolean healthEnabled = read(problems, () -> config.getBoolean("worker.health.enabled"), false);
    String healthBind =
        read(problems, () -> config.getString("worker.health.bind-address").trim(), "");
    int healthPort = read(problems, () -> config.getInt("worker.health.port"), 0);
    if (healthPort < 0 || healthPort > 65535) {
      problems.add(origin(config, "worker.health.port") + "worker.health.port: " + healthPort
          + " is not a TCP port; use 1-65535 (default 50053), or 0 for any free port");
    } else if (healthEnabled && healthPort != 0
        && (healthPort == port || (metricsEnabled && healthPort == metricsPort))) {
      problems.add("worker.health.port: " + healthPort + " is also worker.port or"
          + " worker.metrics.port; use another");
    }

    Limits limits = Limits.from(config, problems);
    Jobs jobs = new Jobs(
        read(problems, () -> config.getInt("worker.jobs.event-buffer.events"), 10_000),
        read(problems, () -> config.getBytes("worker.jobs.event-buffer.bytes"), 8L << 20),
        positive(config, problems, "worker.jobs.retention"),
        read(problems, () -> config.getInt("worker.jobs.retained"), 1_000),
        read(problems, () -> config.getBytes("worker.jobs.retained-bytes"), 256L << 20));
    if (jobs.bufferEvents() < 1 || jobs.bufferBytes() < 1024 || jobs.retained() < 0
        || jobs.retainedBytes() < 0) {
      problems.add("worker.jobs: event-buffer.events must be at least 1, event-buffer.bytes at"
          + " least 1KiB, retained and retained-bytes at least 0");
    }
    Stopping stopping = new Stopping(positive(config, problems, "worker.stop-grace"),
        positive(config, problems, "worker.cleanup-timeout"),
        positive(config, problems, "worker.stuck-stage-limit"));

    problems.throwIfAny("invalid worker configuration");
    return new WorkerSettings(
        id,
        Optional.of(regionValue).filter(r -> !r.isEmpty()),
        bindAddress,
        port,
        advertise,
        labels,
        new Orchestrator(
            Optional.of(orchestratorAddress).filter(a -> !a.isEmpty()),
            initialBackoff,
            maxBackoff,
            callTimeout,
            heartbeatInterval),
        workspaceRoot,
        maxJobs,
        jobTimeout,
        grace,
        List.copyOf(pipeline),
        format,
        level,
        new Metrics(metricsEnabled, metricsBind, metricsPort),
        security,
        healthEnabled ? Optional.of(new Health(healthBind, healthPort)) : Optional.empty(),
        limits,
        stopping,
        jobs);
  }

  private static Map<String, String> readLabels(Config config, ConfigProblems problems) {
    Map<String, String> labels = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, ConfigValue> e : config.getObject("worker.labels").entrySet()) {
        Object value = e.getValue().unwrapped();
        if (value instanceof Map || value instanceof List) {
          problems.add(e.getValue().origin().description() + ": worker.labels." + e.getKey()
              + " must be a string, not " + e.getValue().valueType());
        } else {
          labels.put(e.getKey(), String.valueOf(value));
        }
      }
    } catch (ConfigException e) {
      problems.add(e);
    }
    return Collections.unmodifiableMap(labels);
  }

  /** Every key under {@code worker} must be one the runtime knows: a typo is an error. */
  private static void unknownKeys(Config config, Config reference, ConfigProblems problems) {
    if (!config.hasPath("worker") || !reference.hasPath("worker")) {
      return;
    }
    try {
      Set<String> known = keysOf(settingsOf(reference));
      for (String key : keysOf(settingsOf(config))) {
        if (!known.contains(key)) {
          problems.add(origin(config, "worker." + key) + "worker." + key
              + " is not a known setting; known settings are " + known);
        }
      }
    } catch (ConfigException e) {
      problems.add(e);
    }
  }

  /**
   * The runtime's own keys under {@code worker}: stage blocks and labels are free-form, and each
   * caller's keys are checked by {@link SecuritySettings}.
   */
  private static Config settingsOf(Config config) {
    return config.getConfig("worker").withoutPath("stages").withoutPath("labels");
  }

  private static Set<String> keysOf(Config config) {
    Set<String> keys = new java.util.TreeSet<>();
    config.entrySet().forEach(e -> keys.add(e.getKey()));
    return keys;
  }

  private static Duration positive(Config config, ConfigProblems problems, String path) {
    Duration d = read(problems, () -> config.getDuration(path), Duration.ofSeconds(1));
    if (d.isZero() || d.isNegative()) {
      problems.add(origin(config, path) + path + ": " + d + " must be longer than zero");
      return Duration.ofSeconds(1);
    }
    return d;
  }

  /** Reads one setting; a problem is recorded and {@code fallback} returned when it is wrong. */
  static <T> T read(ConfigProblems problems, Supplier<T> getter, T fallback) {
    try {
      return getter.get();
    } catch (ConfigException e) {
      problems.add(e);
      return fallback;
    }
  }

  /** Where a setting came from, as "file: line: ", or "" when unknown. */
  static String origin(Config config, String path) {
    try {
      return config.getValue(path).origin().description() + ": ";
    } catch (ConfigException e) {
      return "";
    }
  }

  /** The first non-loopback IPv4 address of an interface that is up, else 127.0.0.1. */
  static String detectAddress() {
    try {
      for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        if (!nif.isUp() || nif.isLoopback()) {
          continue;
        }
        for (InetAddress address : Collections.list(nif.getInetAddresses())) {
          if (address instanceof Inet4Address && !address.isLoopbackAddress()
              && !address.isLinkLocalAddress()) {
            return address.getHostAddress();
          }
        }
      }
    } catch (SocketException e) {
      // Fall through: a worker without interfaces can still serve on loopback.
    }
    return "127.0.0.1";
  }
}

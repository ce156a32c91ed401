package dev.slipway.worker.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigRenderOptions;
import com.typesafe.config.ConfigValueFactory;
import dev.slipway.proto.v1.RegisterRequest;
import dev.slipway.worker.runtime.config.ConfigLoader;
import dev.slipway.worker.runtime.config.ConfigProblems;
import dev.slipway.worker.runtime.config.SecuritySettings;
import dev.slipway.worker.runtime.config.StartupPhases;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.grpc.CallerInterceptor;
import dev.slipway.worker.runtime.security.AccessPolicy;
import dev.slipway.worker.runtime.security.CallerRegistry;
import dev.slipway.worker.runtime.security.TransportSecurity;
import dev.slipway.worker.runtime.config.WorkerSettings;
import dev.slipway.worker.runtime.grpc.WorkerServer;
import dev.slipway.worker.runtime.metrics.WorkerMetrics;
import dev.slipway.worker.runtime.job.JobManager;
import dev.slipway.worker.runtime.job.Workspaces;
import dev.slipway.worker.runtime.logging.LogMasking;
import dev.slipway.worker.runtime.pipeline.Pipeline;
import dev.slipway.worker.runtime.pipeline.PipelineAssembler;
import dev.slipway.worker.runtime.pipeline.PipelineStage;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import dev.slipway.worker.runtime.registration.Registrar;
import io.grpc.Channel;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A whole worker: configuration, plugins, pipeline, job manager, gRPC server and registration.
 * {@link #prepare} does every check and fails with all problems at once; {@link #start} serves.
 */
public final class Worker implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Worker.class);

  private final WorkerSettings settings;
  private final Config config;
  private final PluginRegistry plugins;
  private final Pipeline pipeline;
  private final JobManager jobs;
  private final WorkerMetrics metrics;
  private final Function<String, Channel> channels;
  private final Workspaces workspaces;
  private final CallerRegistry callers;
  private final StartupPhases phases;
  /** New for every start of the process: the orchestrator tells a restarted worker by it. */
  private final String instanceId = java.util.UUID.randomUUID().toString();
  private final TransportSecurity transport = new TransportSecurity();
  private java.util.concurrent.ScheduledExecutorService insecureWarnings;
  private Workspaces.Lock workspaceLock;
  private WorkerServer server;
  private Registrar registrar;
  private ManagedChannel ownChannel;
  private boolean stopped;
  /** Initialising the server's classes (see {@link WorkerServer#warmUp}); null when not. */
  private Thread warmUp;

  private Worker(WorkerSettings settings, Config config, PluginRegistry plugins,
      Pipeline pipeline, Function<String, Channel> channels, List<String> secrets,
      CallerRegistry callers, StartupPhases phases) {
    this.settings = settings;
    this.phases = phases;
    this.callers = callers;
    this.config = config;
    this.plugins = plugins;
    this.pipeline = pipeline;
    this.channels = channels;
    this.workspaces = new Workspaces(settings.workspaceRoot());
    // The gauges read the job manager when scraped, by which time it exists.
    this.metrics = new WorkerMetrics(settings.id(), version(), () -> jobs().status(),
        () -> jobs().runningJobIds().size(), this::registrationState,
        () -> plugins.all().size(), () -> jobs().stuckThreads().count(),
        () -> registrar().map(Registrar::heartbeatFailures).orElse(0L),
        () -> registrar().flatMap(Registrar::lastHeartbeat));
    this.jobs = new JobManager(settings.id(), pipeline, workspaces, settings.maxConcurrentJobs(),
        settings.jobTimeout(), metrics, secrets, settings.limits(),
        settings.stopping().stopGrace(), settings.stopping().cleanupTimeout());
  }

  /**
   * The worker's own secrets: the values of the configuration paths stages declare secret, and
   * the environment's AWS secret key and session token. They are masked in every log line and
   * in every job's events.
   */
  private static List<String> workerSecrets(Config config, Pipeline pipeline,
      dev.slipway.worker.runtime.config.Environment environment) {
    List<String> secrets = new ArrayList<>();
    for (PipelineStage stage : pipeline.stages()) {
      for (String path : stage.plugin().factory().secretConfigPaths()) {
        String full = "worker.stages." + stage.id() + "." + path;
        try {
          if (config.hasPath(full)) {
            secrets.add(config.getString(full));
          }
        } catch (com.typesafe.config.ConfigException e) {
          // Not a string: the stage has already said what is wrong with it.
        }
      }
    }
    for (String name : List.of("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")) {
      environment.get(name).ifPresent(secrets::add);
    }
    secrets.removeIf(String::isBlank);
    secrets.forEach(LogMasking::addWorkerSecret);
    return secrets;
  }

  /** Loads and checks everything, with the stages of the boot layer and the plugins folder. */
  public static Worker prepare(WorkerOptions options) throws StartupException {
    return prepare(options, new StartupPhases());
  }

  /** Loads and checks everything, marking each phase of it in {@code phases}. */
  public static Worker prepare(WorkerOptions options, StartupPhases phases)
      throws StartupException {
    PluginRegistry plugins = PluginRegistry.discover(options.pluginsDir());
    phases.mark("plugins");
    // The gRPC server's classes initialise on the other core while configuration and stages
    // load (after the plugin folders, which keep both cores busy); start() waits for it.
    Thread warmUp = new Thread(() -> {
      try {
        WorkerServer.warmUp();
      } catch (RuntimeException | LinkageError e) {
        // Only a head start: building the server says what is wrong, if anything is.
        LOG.debug("warming up the gRPC server's classes failed", e);
      }
    }, "warm-up");
    warmUp.setDaemon(true);
    warmUp.start();
    Worker worker = prepare(options, plugins, null, phases);
    worker.warmUp = warmUp;
    return worker;
  }

  /**
   * Loads and checks everything.
   *
   * @param channels makes the channel to the orchestrator from its address; null for a real
   *     plaintext channel (tests pass an in-process one)
   */
  public static Worker prepare(WorkerOptions options, PluginRegistry plugins,
      Function<String, Channel> channels) throws StartupException {
    return prepare(options, plugins, channels, new StartupPhases());
  }

  private static Worker prepare(WorkerOptions options, PluginRegistry plugins,
      Function<String, Channel> channels, StartupPhases phases) throws StartupException {
    List<Module> modules = new ArrayList<>();
    for (DiscoveredStage stage : plugins.all()) {
      if (!modules.contains(stage.module())) {
        modules.add(stage.module());
      }
    }
    Config config = ConfigLoader.load(options.configFile(), options.workingDirectory(),
        options.environment(), options.systemProperties(), modules);
    Config reference = ConfigLoader.runtimeReference();
    WorkerSettings settings;
    List<String> problems = new ArrayList<>();
    try {
      settings = WorkerSettings.from(config, reference, options.workingDirectory());
    } catch (StartupException e) {
      problems.addAll(e.problems());
      settings = null;
    }
    phases.mark("config");
    Pipeline pipeline = null;
    CallerRegistry callers = null;
    if (settings != null) {
      ConfigProblems security = new ConfigProblems();
      callers = CallerRegistry.load(settings.security(), security);
      settings.security().tls().ifPresent(tls -> TransportSecurity.check(tls, security));
      settings.security().orchestratorTls()
          .ifPresent(tls -> TransportSecurity.check(tls, security));
      problems.addAll(security.asList());
      phases.mark("security");
      try {
        pipeline = PipelineAssembler.assemble(config, settings, plugins, new RuntimeEnvironment(
            settings.id(), settings.region(), options.home(), options.environment()), phases);
      } catch (StartupException e) {
        problems.addAll(e.problems());
      }
    } else {
      // The worker block has problems; check the stages too, so that every problem is reported
      // at once, not one round of fixes at a time.
      try {
        List<String> ids = config.getStringList("worker.pipeline");
        PipelineAssembler.assemble(config, ids, java.time.Duration.ofHours(1), plugins,
            new RuntimeEnvironment("unknown", Optional.empty(), options.home(),
                options.environment())).close();
      } catch (StartupException e) {
        problems.addAll(e.problems());
      } catch (com.typesafe.config.ConfigException e) {
        // worker.pipeline itself is wrong, and already reported.
      }
    }
    if (!problems.isEmpty()) {
      ConfigProblems all = new ConfigProblems();
      all.addAll(problems);
      all.throwIfAny("the worker cannot start");
    }
    phases.mark("pipeline");
    Worker worker = new Worker(settings, config, plugins, pipeline, channels,
        workerSecrets(config, pipeline, options.environment()), callers, phases);
    phases.mark("jobs");
    return worker;
  }

  /**
   * Starts the server, then registers; returns once the server listens.
   *
   * @throws StartupException when another worker uses the same workspace root
   */
  public synchronized void start() throws IOException, StartupException {
    // Only a serving worker owns the workspace root: check-config must not touch running jobs.
    workspaceLock = workspaces.lock();
    // What a crashed predecessor left (processes, temp dirs, images, workspaces), before serving.
    jobs.removeLeftovers();
    phases.mark("leftovers");
    if (warmUp != null) {
      // Never two threads initialising the same classes: the server is built after it is done.
      try {
        warmUp.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while starting", e);
      }
      warmUp = null;
      phases.mark("warm-up");
    }
    SecuritySettings security = settings.security();
    Optional<io.grpc.ServerCredentials> credentials;
    try {
      credentials = security.tls().isPresent()
          ? Optional.of(transport.server(security.tls().get())) : Optional.empty();
    } catch (java.security.GeneralSecurityException e) {
      throw new StartupException("the worker cannot start",
          List.of("worker.tls: the certificate files cannot be used: " + e.getMessage()));
    }
    server = new WorkerServer(new WorkerServer.Options(settings.bindAddress(), settings.port(),
            credentials, callers.enabled(),
            settings.health().map(h -> new java.net.InetSocketAddress(h.bindAddress(), h.port())),
            settings.limits().maxInboundMessageSize(), settings.jobTimeout(),
            settings.stopping().stuckLimit(), settings.jobs()),
        jobs, settings.id(), new CallerInterceptor(callers, new AccessPolicy(security.policy()),
            security.openMethods(), jobs));
    server.start();
    phases.mark("server");
    LOG.info("worker {} listening on {}:{} ({}{}), pipeline {}", settings.id(),
        settings.bindAddress(), server.port(),
        security.tls().isEmpty() ? "plaintext"
            : security.tls().get().clientCaFile().isPresent() ? "mutual TLS" : "TLS",
        callers.enabled() ? ", " + security.callers().size() + " caller(s)"
            : ", no caller authentication", pipeline.ids());
    server.healthPort().ifPresent(p -> LOG.info("health (only) in plaintext on {}:{}",
        settings.health().orElseThrow().bindAddress(), p));
    warnIfExposed(security);
    if (settings.metrics().enabled()) {
      metrics.serve(settings.metrics().bindAddress(), settings.metrics().port());
      LOG.info("metrics on http://{}:{}/metrics", settings.metrics().bindAddress(),
          metrics.port());
    }
    server.markServing();
    phases.mark("serving");
    Optional<String> address = settings.orchestrator().address();
    if (address.isEmpty()) {
      LOG.info("no orchestrator address (worker.orchestrator.address / ORCHESTRATOR_ADDR):"
          + " standalone mode, jobs are taken from whoever calls");
      return;
    }
    Channel channel;
    if (channels == null) {
      ownChannel = orchestratorChannel(address.get(), security);
      channel = ownChannel;
    } else {
      channel = channels.apply(address.get());
    }
    RegisterRequest.Builder request = RegisterRequest.newBuilder()
        .setWorkerId(settings.id())
        .setIp(settings.advertiseAddress())
        .setPort(server.port())
        .setRegion(settings.region().orElse(""))
        .putAllLabels(settings.labels())
        .addAllStages(pipeline.ids())
        .setVersion(version())
        .setInstanceId(instanceId);
    registrar = new Registrar(channel, request.build(), settings.orchestrator().initialBackoff(),
        settings.orchestrator().maxBackoff(), settings.orchestrator().callTimeout(),
        settings.orchestrator().heartbeatInterval(),
        new Registrar.Report(this::workerStatus, jobs::runningJobIds));
    registrar.start();
  }

  private ManagedChannel orchestratorChannel(String address, SecuritySettings security)
      throws IOException, StartupException {
    if (security.orchestratorTls().isEmpty()) {
      return Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
    }
    SecuritySettings.ClientTls tls = security.orchestratorTls().get();
    try {
      var builder = Grpc.newChannelBuilder(address, transport.client(tls));
      tls.serverName().ifPresent(builder::overrideAuthority);
      return builder.build();
    } catch (java.security.GeneralSecurityException e) {
      throw new StartupException("the worker cannot start",
          List.of("worker.orchestrator.tls: the files cannot be used: " + e.getMessage()));
    }
  }

  /**
   * A worker that other hosts can reach without TLS, or without caller authentication, says so
   * at start-up; one that has neither (worker.insecure) says so every 10 minutes too.
   */
  private void warnIfExposed(SecuritySettings security) {
    if (SecuritySettings.isLoopback(settings.bindAddress())) {
      return;
    }
    if (security.tls().isEmpty() && security.authenticates()) {
      LOG.warn("worker.tls is not set: callers' bearer tokens, git tokens and build logs cross"
          + " the network in plain text; set worker.tls.cert-file and key-file");
    } else if (security.tls().isPresent() && !security.authenticates()) {
      LOG.warn("worker.callers is empty: every client that completes the TLS handshake may run"
          + " jobs with the worker's credentials{}",
          security.tls().get().clientCaFile().isPresent() ? "" : " (and without"
              + " worker.tls.client-ca-file that is anyone who can reach the port)");
    }
    if (security.tls().isEmpty() && !security.authenticates()) {
      Runnable warning = () -> LOG.warn("INSECURE: worker.insecure = true and the worker serves"
          + " {}:{} in plaintext without caller authentication: anyone who reaches the port can"
          + " run jobs with the worker's credentials and read their tokens; set worker.tls and"
          + " worker.callers", settings.bindAddress(), server.port());
      insecureWarnings = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "insecure-warning");
        t.setDaemon(true);
        return t;
      });
      insecureWarnings.scheduleAtFixedRate(warning, 0, INSECURE_WARNING_PERIOD.toSeconds(),
          TimeUnit.SECONDS);
    }
  }

  /** How often a worker running with worker.insecure = true says so. */
  private static final java.time.Duration INSECURE_WARNING_PERIOD =
      java.time.Duration.ofMinutes(10);

  private dev.slipway.proto.v1.WorkerStatus workerStatus() {
    return switch (jobs.status()) {
      case FREE -> dev.slipway.proto.v1.WorkerStatus.WORKER_STATUS_FREE;
      case BUSY -> dev.slipway.proto.v1.WorkerStatus.WORKER_STATUS_BUSY;
      case DRAINING -> dev.slipway.proto.v1.WorkerStatus.WORKER_STATUS_DRAINING;
    };
  }

  /** How long each phase of this worker's start-up took. */
  public StartupPhases startupPhases() {
    return phases;
  }

  /** This start of the process, as the orchestrator tells starts apart. */
  public String instanceId() {
    return instanceId;
  }

  /** The worker's version: its module's version, as built. */
  public static String version() {
    return Worker.class.getModule().getDescriptor() == null ? "dev"
        : Worker.class.getModule().getDescriptor().rawVersion().orElse("dev");
  }

  /** Drains (new jobs refused, a running one may finish within the grace period) and stops. */
  public synchronized void stop() {
    if (stopped) {
      return;
    }
    stopped = true;
    LOG.info("stopping: draining for up to {} ms", settings.shutdownGracePeriod().toMillis());
    if (registrar != null) {
      // Before the drain: the orchestrator stops scheduling on this worker at once.
      registrar.deregister("the worker is shutting down");
    }
    if (server != null) {
      server.drainAndStop(settings.shutdownGracePeriod());
    }
    jobs.close();
    pipeline.close();
    metrics.close();
    transport.close();
    if (insecureWarnings != null) {
      insecureWarnings.shutdownNow();
    }
    if (workspaceLock != null) {
      workspaceLock.close();
    }
    if (ownChannel != null) {
      ownChannel.shutdownNow();
      try {
        ownChannel.awaitTermination(2, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    LOG.info("stopped");
  }

  @Override
  public void close() {
    stop();
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }

  public int port() {
    return server.port();
  }

  /** The port of the plaintext health-only listener, when {@code worker.health} enables it. */
  public Optional<Integer> healthPort() {
    return server.healthPort();
  }

  public WorkerSettings settings() {
    return settings;
  }

  public JobManager jobs() {
    return jobs;
  }

  public PluginRegistry plugins() {
    return plugins;
  }

  public Pipeline pipeline() {
    return pipeline;
  }

  public Optional<Registrar.State> registrationState() {
    if (settings.orchestrator().address().isEmpty()) {
      return Optional.of(Registrar.State.STANDALONE);
    }
    return Optional.ofNullable(registrar).map(Registrar::state);
  }

  /** The port metrics are served on, when enabled. */
  public int metricsPort() {
    return metrics.port();
  }

  public Optional<Registrar> registrar() {
    return Optional.ofNullable(registrar);
  }

  /**
   * The effective configuration as HOCON, with the value of every secret path masked: the paths
   * stages declare secret, and any key whose name says password, secret or token.
   */
  public String renderEffectiveConfig() {
    Config masked = config;
    Set<String> secretPaths = new TreeSet<>();
    for (PipelineStage stage : pipeline.stages()) {
      for (String path : stage.plugin().factory().secretConfigPaths()) {
        secretPaths.add("worker.stages." + stage.id() + "." + path);
      }
    }
    for (var entry : config.entrySet()) {
      String key = entry.getKey().toLowerCase(java.util.Locale.ROOT);
      if (key.contains("password") || key.contains("secret") || key.contains("token")) {
        secretPaths.add(entry.getKey());
      }
    }
    for (String path : secretPaths) {
      if (masked.hasPath(path)) {
        masked = masked.withValue(path, ConfigValueFactory.fromAnyRef("****"));
      }
    }
    return masked.root().render(ConfigRenderOptions.defaults().setOriginComments(false)
        .setComments(false).setJson(false));
  }

}

package dev.slipway.worker.runtime.grpc;

import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.runtime.job.JobManager;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptor;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gRPC server: JobService, the standard health service and server reflection. Its life
 * follows grpc-java's examples: health turns SERVING only once everything has started, and on
 * shutdown the worker drains before the server stops.
 */
public final class WorkerServer {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerServer.class);

  private final JobManager jobs;
  private final HealthStatusManager health = new HealthStatusManager();
  private final ExecutorService executor;
  /** Serves Ping and health alone, so that no burst of job calls can keep a probe waiting. */
  private final ExecutorService probes;
  private final Server server;
  private final Optional<Server> healthServer;

  /**
   * How the server listens.
   *
   * @param bindAddress the address it binds
   * @param port its port; 0 for any free one
   * @param credentials TLS for every service, or empty for plaintext
   * @param authenticates whether callers are told apart ({@code worker.callers})
   * @param healthOnly where to serve the health service alone in plaintext, if anywhere
   * @param maxInboundMessageSize the largest request message read, in bytes
   * @param longestCall the longest a call may last (a RunJob of a whole job): connections are
   *     never cut under one
   * @param stuckLimit how long an abandoned job thread may be stuck before health says
   *     NOT_SERVING
   * @param jobs what is kept of jobs' events and of finished jobs
   */
  public record Options(String bindAddress, int port, Optional<ServerCredentials> credentials,
      boolean authenticates, Optional<InetSocketAddress> healthOnly, int maxInboundMessageSize,
      Duration longestCall, Duration stuckLimit,
      dev.slipway.worker.runtime.config.WorkerSettings.Jobs jobs) {}

  /** Clients may ping a connection at most this often; more often is a protocol error. */
  private static final Duration PERMIT_KEEPALIVE = Duration.ofSeconds(20);
  /** The server pings an idle-looking connection after this long, to find dead peers. */
  private static final Duration KEEPALIVE = Duration.ofMinutes(2);
  /** A connection with no call for this long is closed. */
  private static final Duration MAX_IDLE = Duration.ofMinutes(30);
  /** Connections are renewed after this long (a GOAWAY), so clients rebalance over workers. */
  private static final Duration MAX_AGE = Duration.ofHours(1);
  /** Calls on one connection at once: more is a client misbehaving, not a fleet. */
  private static final int MAX_CALLS_PER_CONNECTION = 256;

  private final Options options;
  private final java.util.concurrent.ScheduledExecutorService watchdog;
  private boolean serving;
  private boolean unhealthy;

  /**
   * @param gate checks every call's caller and scopes before any service sees it
   */
  public WorkerServer(Options options, JobManager jobs, String workerId, ServerInterceptor gate) {
    this.options = options;
    this.jobs = jobs;
    AtomicInteger n = new AtomicInteger();
    // RunJob and StreamJob return at once, so a small bounded pool serves any number of calls.
    this.executor = Executors.newFixedThreadPool(4, r -> {
      Thread t = new Thread(r, "grpc-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    this.probes = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "grpc-probe-" + n.incrementAndGet());
      t.setDaemon(true);
      // The plaintext health-only listener's (worker.health): a few microseconds per probe.
      t.setPriority(Thread.MAX_PRIORITY);
      return t;
    });
    InetSocketAddress address = new InetSocketAddress(options.bindAddress(), options.port());
    NettyServerBuilder builder = options.credentials().isPresent()
        ? NettyServerBuilder.forAddress(address, options.credentials().get())
        : NettyServerBuilder.forAddress(address);
    this.server = builder
        // Each call's executor is chosen on the transport thread (probeExecutor): with a pool
        // here, the choosing itself would queue behind busy job calls.
        .executor(Runnable::run)
        .callExecutor(this::probeExecutor)
        // A request is a few kilobytes; a bigger one is refused before it is parsed.
        .maxInboundMessageSize(options.maxInboundMessageSize())
        .maxInboundMetadataSize(16 * 1024)
        .maxConcurrentCallsPerConnection(MAX_CALLS_PER_CONNECTION)
        .keepAliveTime(KEEPALIVE.toSeconds(), TimeUnit.SECONDS)
        .keepAliveTimeout(20, TimeUnit.SECONDS)
        .permitKeepAliveTime(PERMIT_KEEPALIVE.toSeconds(), TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true)
        .maxConnectionIdle(MAX_IDLE.toMinutes(), TimeUnit.MINUTES)
        .maxConnectionAge(MAX_AGE.toMinutes(), TimeUnit.MINUTES)
        // A RunJob in flight is never cut: the grace outlasts the longest job.
        .maxConnectionAgeGrace(options.longestCall().plusMinutes(1).toSeconds(), TimeUnit.SECONDS)
        // Health and reflection too: with TLS on, nothing is served in plaintext, and the gate
        // sees every call (health is open by worker.open-methods, not by being left out).
        .intercept(gate)
        .addService(new JobServiceImpl(jobs, workerId, options.authenticates(),
            new JobJournals(new JobJournals.Limits(options.jobs().bufferEvents(),
                options.jobs().bufferBytes(), options.jobs().retention(),
                options.jobs().retained(), options.jobs().retainedBytes()))))
        .addService(health.getHealthService())
        .addService(ProtoReflectionServiceV1.newInstance())
        .build();
    // The same status manager: both listeners turn NOT_SERVING together when the worker drains.
    this.healthServer = options.healthOnly().map(a -> NettyServerBuilder.forAddress(a)
        .executor(probes)
        .maxInboundMessageSize(16 * 1024)
        .addService(health.getHealthService())
        .build());
    this.watchdog = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "health-watchdog");
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * The executor of a call: Ping and health on the transport thread itself ({@link #DIRECT}),
   * everything else on the job calls' pool. Chosen on the transport thread from the method name
   * alone, before any of the call (interceptors included) runs.
   */
  private java.util.concurrent.Executor probeExecutor(io.grpc.ServerCall<?, ?> call,
      io.grpc.Metadata headers) {
    String method = call.getMethodDescriptor().getFullMethodName();
    return method.equals(PING) || method.startsWith(HEALTH) ? DIRECT : executor;
  }

  /**
   * Ping and health run on the transport thread that read them: each is a few microseconds of
   * work that never blocks (the job manager's state under its monitor, held only briefly), and a
   * hop to another thread meant waiting for a core while builds kept both busy.
   */
  private static final java.util.concurrent.Executor DIRECT = Runnable::run;

  private static final String PING = JobServiceGrpc.getPingMethod().getFullMethodName();
  private static final String HEALTH = io.grpc.health.v1.HealthGrpc.SERVICE_NAME + "/";

  /**
   * Initialises the classes the server is built from (Netty's platform probing, the gRPC
   * builder, the health and reflection services with their protobuf descriptors) and nothing
   * else: no socket, no thread. A start-up runs it on a thread of its own while it reads plugins
   * and configuration, and waits for it before building the server, so that no class is ever
   * initialised by two threads at once.
   */
  public static void warmUp() {
    NettyServerBuilder.forPort(0);
    new HealthStatusManager().getHealthService().bindService();
    ProtoReflectionServiceV1.newInstance().bindService();
    JobServiceGrpc.getServiceDescriptor();
  }

  /** Starts listening; health stays NOT_SERVING until {@link #markServing()}. */
  public void start() throws IOException {
    health.setStatus("", ServingStatus.NOT_SERVING);
    health.setStatus(JobServiceGrpc.SERVICE_NAME, ServingStatus.NOT_SERVING);
    server.start();
    if (healthServer.isPresent()) {
      try {
        healthServer.get().start();
      } catch (IOException e) {
        server.shutdownNow();
        throw e;
      }
    }
  }

  /** The port of the health-only listener, if there is one. */
  public Optional<Integer> healthPort() {
    return healthServer.map(Server::getPort);
  }

  public void markServing() {
    synchronized (this) {
      serving = true;
    }
    setStatus(ServingStatus.SERVING);
    watchdog.scheduleWithFixedDelay(this::checkStuck, 1, 1, TimeUnit.SECONDS);
  }

  /**
   * A worker with a job thread stuck for longer than {@code worker.stuck-stage-limit} says
   * NOT_SERVING, so a liveness probe restarts it; it says SERVING again once the thread returned.
   */
  private void checkStuck() {
    boolean stuck = jobs.stuckThreads().longest()
        .map(d -> d.compareTo(options.stuckLimit()) > 0).orElse(false);
    ServingStatus status;
    synchronized (this) {
      if (!serving || stuck == unhealthy) {
        return;
      }
      unhealthy = stuck;
      status = stuck ? ServingStatus.NOT_SERVING : ServingStatus.SERVING;
    }
    if (stuck) {
      LOG.error("a job thread has been stuck for longer than worker.stuck-stage-limit ({});"
          + " health is NOT_SERVING until it returns or the worker restarts",
          options.stuckLimit());
    } else {
      LOG.info("no job thread is stuck any more; health is SERVING again");
    }
    setStatus(status);
  }

  private void setStatus(ServingStatus status) {
    health.setStatus("", status);
    health.setStatus(JobServiceGrpc.SERVICE_NAME, status);
  }

  /** The port the server listens on; the real one when configured with 0. */
  public int port() {
    return server.getPort();
  }

  /**
   * Drains and stops: new jobs are refused, a running job may finish within {@code grace} and is
   * cancelled after it, then the server stops.
   */
  public void drainAndStop(Duration grace) {
    synchronized (this) {
      serving = false;
    }
    watchdog.shutdownNow();
    setStatus(ServingStatus.NOT_SERVING);
    jobs.drain();
    try {
      if (!jobs.runningJobIds().isEmpty()) {
        LOG.info("draining: waiting up to {} ms for job(s) {}", grace.toMillis(),
            jobs.runningJobIds());
      }
      if (!jobs.awaitIdle(grace)) {
        LOG.warn("draining: grace period over, cancelling job(s) {}", jobs.runningJobIds());
        jobs.cancelAll();
        jobs.awaitIdle(Duration.ofSeconds(10));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    health.enterTerminalState();
    healthServer.ifPresent(Server::shutdownNow);
    server.shutdown();
    try {
      if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    }
    executor.shutdownNow();
    probes.shutdownNow();
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }
}

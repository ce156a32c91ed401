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
  private final Server server;
  private final Optional<Server> healthServer;

  /**
   * @param credentials TLS for every service, or empty for plaintext
   * @param gate checks every call's caller and scopes before any service sees it
   * @param authenticates whether callers are told apart ({@code worker.callers})
   * @param healthOnly where to serve the health service alone in plaintext, if anywhere
   */
  public WorkerServer(String bindAddress, int port, JobManager jobs, String workerId,
      Optional<ServerCredentials> credentials, ServerInterceptor gate, boolean authenticates,
      Optional<InetSocketAddress> healthOnly) {
    this.jobs = jobs;
    AtomicInteger n = new AtomicInteger();
    // RunJob and StreamJob return at once, so a small bounded pool serves any number of calls.
    this.executor = Executors.newFixedThreadPool(4, r -> {
      Thread t = new Thread(r, "grpc-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    InetSocketAddress address = new InetSocketAddress(bindAddress, port);
    NettyServerBuilder builder = credentials.isPresent()
        ? NettyServerBuilder.forAddress(address, credentials.get())
        : NettyServerBuilder.forAddress(address);
    this.server = builder
        .executor(executor)
        // Health and reflection too: with TLS on, nothing is served in plaintext, and the gate
        // sees every call (health is open by worker.open-methods, not by being left out).
        .intercept(gate)
        .addService(new JobServiceImpl(jobs, workerId, authenticates))
        .addService(health.getHealthService())
        .addService(ProtoReflectionServiceV1.newInstance())
        .build();
    // The same status manager: both listeners turn NOT_SERVING together when the worker drains.
    this.healthServer = healthOnly.map(a -> NettyServerBuilder.forAddress(a)
        .executor(executor)
        .addService(health.getHealthService())
        .build());
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
    health.setStatus("", ServingStatus.SERVING);
    health.setStatus(JobServiceGrpc.SERVICE_NAME, ServingStatus.SERVING);
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
    health.setStatus("", ServingStatus.NOT_SERVING);
    health.setStatus(JobServiceGrpc.SERVICE_NAME, ServingStatus.NOT_SERVING);
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
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }
}

package dev.slipway.worker.runtime.registration;

import dev.slipway.proto.v1.DeregisterRequest;
import dev.slipway.proto.v1.HeartbeatRequest;
import dev.slipway.proto.v1.HeartbeatResponse;
import dev.slipway.proto.v1.RegisterRequest;
import dev.slipway.proto.v1.RegisterResponse;
import dev.slipway.proto.v1.WorkerServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the worker known to its orchestrator: registers once the server listens, then sends a
 * heartbeat every {@code worker.orchestrator.heartbeat-interval}. An orchestrator that answers a
 * heartbeat with {@code known = false} (or {@code NOT_FOUND}) has lost its state: the worker
 * registers again at once, listing its running jobs. One that cannot be reached is retried on a
 * capped, jittered exponential backoff, for as long as the worker runs, and the first contact
 * after an outage is a Register, since it may have restarted meanwhile. All of it runs on a
 * thread of its own: a slow or absent orchestrator never delays a job.
 */
public final class Registrar implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Registrar.class);

  /** Where registration stands. */
  public enum State {
    STANDALONE,
    REGISTERING,
    REGISTERED,
    STOPPED
  }

  /**
   * What the worker tells the orchestrator about itself, read at each call.
   *
   * @param status the worker's status now
   * @param runningJobIds the jobs running now
   */
  public record Report(Supplier<WorkerStatus> status, Supplier<List<String>> runningJobIds) {}

  private final Channel channel;
  private final RegisterRequest request;
  private final Duration initialBackoff;
  private final Duration maxBackoff;
  private final Duration callTimeout;
  private final Duration heartbeatInterval;
  private final Report report;
  private final ScheduledExecutorService scheduler;
  private final AtomicReference<State> state = new AtomicReference<>(State.REGISTERING);
  private final AtomicLong sequence = new AtomicLong();
  private final AtomicLong heartbeatFailures = new AtomicLong();
  private volatile Instant lastHeartbeat;
  private volatile int attempts;
  /** Failed calls in a row, for the backoff. */
  private int failures;

  /**
   * @param channel a channel to the orchestrator
   * @param request what to register; its {@code instance_id} names this start of the process
   */
  public Registrar(Channel channel, RegisterRequest request, Duration initialBackoff,
      Duration maxBackoff, Duration callTimeout, Duration heartbeatInterval, Report report) {
    this.channel = channel;
    this.request = request;
    this.initialBackoff = initialBackoff;
    this.maxBackoff = maxBackoff;
    this.callTimeout = callTimeout;
    this.heartbeatInterval = heartbeatInterval;
    this.report = report;
    this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "registrar");
      t.setDaemon(true);
      return t;
    });
  }

  /** Starts registering in the background. */
  public void start() {
    scheduler.execute(this::register);
  }

  public State state() {
    return state.get();
  }

  /** How many Register calls were made so far. */
  public int attempts() {
    return attempts;
  }

  /** Heartbeats that failed (not reached, or refused) since the start. */
  public long heartbeatFailures() {
    return heartbeatFailures.get();
  }

  /** When the orchestrator last accepted a heartbeat, if ever. */
  public Optional<Instant> lastHeartbeat() {
    return Optional.ofNullable(lastHeartbeat);
  }

  private WorkerServiceGrpc.WorkerServiceBlockingStub stub() {
    return WorkerServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(callTimeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  private void register() {
    if (state.get() == State.STOPPED) {
      return;
    }
    int attempt = ++attempts;
    String why;
    try {
      RegisterResponse response = stub().register(request.toBuilder()
          .clearRunningJobIds().addAllRunningJobIds(report.runningJobIds().get()).build());
      if (response.getAccepted()) {
        boolean again = state.getAndUpdate(s -> s == State.STOPPED ? s : State.REGISTERED)
            == State.REGISTERED || attempt > 1;
        failures = 0;
        LOG.info("{} with the orchestrator as {} ({}:{}), stages {}",
            again ? "registered again" : "registered", request.getWorkerId(), request.getIp(),
            request.getPort(), request.getStagesList());
        schedule(this::heartbeat, heartbeatInterval);
        return;
      }
      why = "the orchestrator refused: " + response.getMessage();
    } catch (StatusRuntimeException e) {
      why = describe(e);
    } catch (RuntimeException e) {
      why = "registration failed: " + e;
    }
    Duration delay = backoff(++failures, initialBackoff, maxBackoff);
    LOG.warn("registration attempt {} failed ({}); next attempt in {} ms", attempt, why,
        delay.toMillis());
    schedule(this::register, delay);
  }

  private void heartbeat() {
    if (state.get() == State.STOPPED) {
      return;
    }
    HeartbeatRequest beat = HeartbeatRequest.newBuilder()
        .setWorkerId(request.getWorkerId())
        .setInstanceId(request.getInstanceId())
        .setStatus(report.status().get())
        .addAllRunningJobIds(report.runningJobIds().get())
        .setSequence(sequence.incrementAndGet())
        .build();
    try {
      HeartbeatResponse response = stub().heartbeat(beat);
      if (response.getKnown()) {
        lastHeartbeat = Instant.now();
        failures = 0;
        schedule(this::heartbeat, heartbeatInterval);
        return;
      }
      heartbeatFailures.incrementAndGet();
      LOG.warn("the orchestrator does not know this worker any more (it lost its state?);"
          + " registering again");
    } catch (StatusRuntimeException e) {
      heartbeatFailures.incrementAndGet();
      if (e.getStatus().getCode() != Status.Code.NOT_FOUND) {
        // Down or unreachable: when it answers again it may have restarted, so register.
        Duration delay = backoff(++failures, initialBackoff, maxBackoff);
        state.compareAndSet(State.REGISTERED, State.REGISTERING);
        LOG.warn("heartbeat {} failed ({}); registering again in {} ms", beat.getSequence(),
            describe(e), delay.toMillis());
        schedule(this::register, delay);
        return;
      }
      LOG.warn("the orchestrator does not know this worker (NOT_FOUND); registering again");
    } catch (RuntimeException e) {
      heartbeatFailures.incrementAndGet();
      LOG.warn("heartbeat failed: {}", e.toString());
    }
    state.compareAndSet(State.REGISTERED, State.REGISTERING);
    scheduler.execute(this::register);
  }

  /**
   * Tells the orchestrator the worker is going away, so it schedules nothing more on it; bounded
   * by the call timeout, and never fatal. Heartbeats stop.
   */
  public void deregister(String reason) {
    State before = state.getAndSet(State.STOPPED);
    scheduler.shutdownNow();
    if (before != State.REGISTERED) {
      return;
    }
    try {
      stub().deregister(DeregisterRequest.newBuilder().setWorkerId(request.getWorkerId())
          .setInstanceId(request.getInstanceId()).setReason(reason).build());
      LOG.info("deregistered from the orchestrator ({})", reason);
    } catch (StatusRuntimeException e) {
      LOG.warn("could not deregister from the orchestrator ({}); it will notice the missing"
          + " heartbeats", describe(e));
    } catch (RuntimeException e) {
      LOG.warn("could not deregister from the orchestrator: {}", e.toString());
    }
  }

  private void schedule(Runnable task, Duration delay) {
    if (state.get() == State.STOPPED) {
      return;
    }
    try {
      scheduler.schedule(task, delay.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // Closed meanwhile.
    }
  }

  private static String describe(StatusRuntimeException e) {
    return tlsFailure(e).orElseGet(() -> "the orchestrator cannot be reached: "
        + e.getStatus().getCode()
        + (e.getStatus().getDescription() == null ? "" : " " + e.getStatus().getDescription()));
  }

  /** What a failed TLS handshake says, with what to check; empty for other failures. */
  private static Optional<String> tlsFailure(StatusRuntimeException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof javax.net.ssl.SSLException) {
        return Optional.of("TLS handshake with the orchestrator failed: "
            + t.getMessage() + "; check that worker.orchestrator.tls.ca-file holds the CA of the"
            + " orchestrator's certificate, that the certificate names the host of"
            + " worker.orchestrator.address (or worker.orchestrator.tls.server-name), and, if it"
            + " requires mutual TLS, that cert-file and key-file are set");
      }
    }
    return Optional.empty();
  }

  /**
   * The delay before attempt {@code attempt + 1}: exponential from {@code initial}, capped at
   * {@code max}, with "equal jitter" (half fixed, half random) so a fleet restarted at once does
   * not call the orchestrator in lockstep.
   */
  static Duration backoff(int attempt, Duration initial, Duration max) {
    double exponential = initial.toMillis() * Math.pow(2, Math.min(attempt - 1, 30));
    long capped = (long) Math.min(exponential, max.toMillis());
    long half = capped / 2;
    return Duration.ofMillis(half + ThreadLocalRandom.current().nextLong(half + 1));
  }

  @Override
  public void close() {
    state.set(State.STOPPED);
    scheduler.shutdownNow();
  }
}

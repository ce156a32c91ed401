package dev.slipway.worker.runtime.registration;

import dev.slipway.proto.v1.RegisterRequest;
import dev.slipway.proto.v1.RegisterResponse;
import dev.slipway.proto.v1.WorkerServiceGrpc;
import io.grpc.Channel;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Registers the worker with its orchestrator once the server listens. An orchestrator that is down
 * or says no is asked again after a capped, jittered exponential backoff, for as long as the
 * worker runs: a worker never crashes because its orchestrator is late.
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

  private final Channel channel;
  private final RegisterRequest request;
  private final Duration initialBackoff;
  private final Duration maxBackoff;
  private final Duration callTimeout;
  private final ScheduledExecutorService scheduler;
  private final AtomicReference<State> state = new AtomicReference<>(State.REGISTERING);
  private volatile int attempts;

  /**
   * @param channel a channel to the orchestrator
   * @param request what to register
   */
  public Registrar(Channel channel, RegisterRequest request, Duration initialBackoff,
      Duration maxBackoff, Duration callTimeout) {
    this.channel = channel;
    this.request = request;
    this.initialBackoff = initialBackoff;
    this.maxBackoff = maxBackoff;
    this.callTimeout = callTimeout;
    this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "registrar");
      t.setDaemon(true);
      return t;
    });
  }

  /** Starts registering in the background. */
  public void start() {
    scheduler.execute(this::attempt);
  }

  public State state() {
    return state.get();
  }

  /** How many Register calls were made so far. */
  public int attempts() {
    return attempts;
  }

  private void attempt() {
    if (state.get() == State.STOPPED) {
      return;
    }
    int attempt = ++attempts;
    String why;
    try {
      RegisterResponse response = WorkerServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(callTimeout.toMillis(), TimeUnit.MILLISECONDS)
          .register(request);
      if (response.getAccepted()) {
        state.compareAndSet(State.REGISTERING, State.REGISTERED);
        LOG.info("registered with the orchestrator as {} ({}:{}), stages {}",
            request.getWorkerId(), request.getIp(), request.getPort(), request.getStagesList());
        return;
      }
      why = "the orchestrator refused: " + response.getMessage();
    } catch (StatusRuntimeException e) {
      why = tlsFailure(e).orElseGet(() -> "the orchestrator cannot be reached: "
          + e.getStatus().getCode()
          + (e.getStatus().getDescription() == null ? "" : " " + e.getStatus().getDescription()));
    } catch (RuntimeException e) {
      why = "registration failed: " + e;
    }
    Duration delay = backoff(attempt, initialBackoff, maxBackoff);
    LOG.warn("registration attempt {} failed ({}); next attempt in {} ms", attempt, why,
        delay.toMillis());
    if (state.get() != State.STOPPED) {
      try {
        scheduler.schedule(this::attempt, delay.toMillis(), TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.RejectedExecutionException e) {
        // Closed meanwhile.
      }
    }
  }

  /** What a failed TLS handshake says, with what to check; empty for other failures. */
  private static java.util.Optional<String> tlsFailure(StatusRuntimeException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof javax.net.ssl.SSLException) {
        return java.util.Optional.of("TLS handshake with the orchestrator failed: "
            + t.getMessage() + "; check that worker.orchestrator.tls.ca-file holds the CA of the"
            + " orchestrator's certificate, that the certificate names the host of"
            + " worker.orchestrator.address (or worker.orchestrator.tls.server-name), and, if it"
            + " requires mutual TLS, that cert-file and key-file are set");
      }
    }
    return java.util.Optional.empty();
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

package dev.slipway.worker.runtime.metrics;

import dev.slipway.worker.runtime.job.JobListener;
import dev.slipway.worker.runtime.job.JobManager;
import dev.slipway.worker.runtime.job.JobResult;
import dev.slipway.worker.runtime.job.StageOutcome;
import dev.slipway.worker.runtime.registration.Registrar;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.util.Locale;
import java.util.Optional;
import java.util.function.IntSupplier;
import java.util.function.Supplier;

/**
 * The worker's Prometheus metrics, served in the text format on {@code /metrics} when
 * {@code worker.metrics.enabled}. Fed as a {@link JobListener}; the gauges read the worker's state
 * when scraped.
 */
public final class WorkerMetrics implements JobListener, AutoCloseable {
  /** Seconds: a clone or build takes from a fraction of a second to tens of minutes. */
  private static final double[] DURATION_BOUNDS =
      {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600};

  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final Counter jobs;
  private final Histogram jobDuration;
  private final Histogram stageDuration;
  private HTTPServer server;

  /**
   * @param status the worker's status, read when scraped
   * @param running how many jobs run, read when scraped
   * @param registration the registration state, read when scraped
   * @param plugins how many stages the worker discovered
   * @param stuck how many threads stopped jobs left behind, read when scraped
   * @param heartbeatFailures how many heartbeats failed, read when scraped
   * @param lastHeartbeat when the orchestrator last accepted a heartbeat, read when scraped
   */
  public WorkerMetrics(String workerId, String version, Supplier<JobManager.Status> status,
      IntSupplier running, Supplier<Optional<Registrar.State>> registration,
      IntSupplier plugins, IntSupplier stuck, java.util.function.LongSupplier heartbeatFailures,
      Supplier<Optional<java.time.Instant>> lastHeartbeat) {
    jobs = Counter.builder().name("slipway_jobs")
        .help("Jobs that ended, by outcome and caller").labelNames("outcome", "caller").register(registry);
    jobDuration = Histogram.builder().name("slipway_job_duration_seconds")
        .help("Wall time of jobs, by outcome").labelNames("outcome")
        .classicOnly().classicUpperBounds(DURATION_BOUNDS).register(registry);
    stageDuration = Histogram.builder().name("slipway_stage_duration_seconds")
        .help("Wall time of stages, by stage and result").labelNames("stage", "result")
        .classicOnly().classicUpperBounds(DURATION_BOUNDS).register(registry);
    GaugeWithCallback.builder().name("slipway_worker_busy")
        .help("1 when every job slot is taken (Ping says BUSY), else 0")
        .callback(cb -> cb.call(status.get() == JobManager.Status.BUSY ? 1 : 0))
        .register(registry);
    GaugeWithCallback.builder().name("slipway_jobs_running")
        .help("Jobs running now").callback(cb -> cb.call(running.getAsInt()))
        .register(registry);
    GaugeWithCallback.builder().name("slipway_worker_draining")
        .help("1 while the worker drains before stopping")
        .callback(cb -> cb.call(status.get() == JobManager.Status.DRAINING ? 1 : 0))
        .register(registry);
    GaugeWithCallback.builder().name("slipway_registration_state")
        .help("1 for the worker's registration state with its orchestrator").labelNames("state")
        .callback(cb -> {
          Optional<Registrar.State> current = registration.get();
          for (Registrar.State state : Registrar.State.values()) {
            cb.call(current.filter(state::equals).isPresent() ? 1 : 0,
                state.name().toLowerCase(Locale.ROOT));
          }
        })
        .register(registry);
    GaugeWithCallback.builder().name("slipway_stuck_stages")
        .help("Stage or cleanup threads of ended jobs that have not returned (abandoned)")
        .callback(cb -> cb.call(stuck.getAsInt())).register(registry);
    io.prometheus.metrics.core.metrics.CounterWithCallback.builder()
        .name("slipway_heartbeat_failures")
        .help("Heartbeats the orchestrator did not accept (not reached, or did not know us)")
        .callback(cb -> cb.call(heartbeatFailures.getAsLong())).register(registry);
    GaugeWithCallback.builder().name("slipway_last_heartbeat_timestamp_seconds")
        .help("When the orchestrator last accepted a heartbeat (Unix time; 0: never)")
        .callback(cb -> cb.call(lastHeartbeat.get().map(i -> i.toEpochMilli() / 1000.0)
            .orElse(0.0)))
        .register(registry);
    GaugeWithCallback.builder().name("slipway_plugins")
        .help("Stages discovered, from the boot layer and plugin folders")
        .callback(cb -> cb.call(plugins.getAsInt())).register(registry);
    GaugeWithCallback.builder().name("slipway_worker_info")
        .help("The worker's id and version").labelNames("worker_id", "version")
        .callback(cb -> cb.call(1, workerId, version)).register(registry);
  }

  /** Serves {@code /metrics} on {@code bindAddress:port}; port 0 picks a free one. */
  public void serve(String bindAddress, int port) throws IOException {
    server = HTTPServer.builder().hostname(bindAddress).port(port).registry(registry)
        .buildAndStart();
  }

  /** The port {@code /metrics} is served on, once serving. */
  public int port() {
    return server.getPort();
  }

  @Override
  public void stageFinished(String jobId, StageOutcome outcome) {
    stageDuration.labelValues(outcome.stage(), outcome.success() ? "ok" : "failed")
        .observe(outcome.duration().toNanos() / 1e9);
  }

  @Override
  public void jobFinished(JobResult result) {
    String outcome = result.outcome().name().toLowerCase(Locale.ROOT);
    jobs.labelValues(outcome, result.caller()).inc();
    jobDuration.labelValues(outcome).observe(result.duration().toNanos() / 1e9);
  }

  @Override
  public void close() {
    if (server != null) {
      server.close();
    }
  }
}

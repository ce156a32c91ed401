package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.runtime.errors.ErrorMapping;
import dev.slipway.worker.runtime.logging.LogMasking;
import dev.slipway.worker.runtime.logging.Logging;
import dev.slipway.worker.runtime.logging.SecretMasker;
import dev.slipway.worker.runtime.pipeline.PipelineStage;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * One job's run through the pipeline, on its own thread. Owns the job's workspace, secrets and
 * timers, and guarantees the cleanup: whatever happens, the stages' cleanup runs, the workspace is
 * deleted and the slot is released before the result is delivered.
 */
final class JobExecution implements Runnable {
  private static final Logger LOG = LoggerFactory.getLogger(JobExecution.class);

  private final JobRequestView request;
  private final List<PipelineStage> stages;
  private final Workspaces workspaces;
  private final Duration jobTimeout;
  private final ScheduledExecutorService timer;
  private final JobListener listener;
  private final Consumer<JobExecution> release;
  private final Executor cancelActions;
  private final SecretMasker masker;
  private final String owner;
  final CompletableFuture<JobResult> result = new CompletableFuture<>();

  private final Object lock = new Object();
  private Thread thread;
  private boolean inStage;
  private ExecutionContext context;
  private JobOutcome stopOutcome;
  private String stopCode;
  private String stopMessage;
  /** The failure of the last stage that failed; read and written on the job's thread only. */
  private ErrorMapping.Failure lastFailure;

  JobExecution(JobRequestView request, List<PipelineStage> stages, Workspaces workspaces,
      Duration jobTimeout, ScheduledExecutorService timer, JobListener listener,
      Consumer<JobExecution> release, Executor cancelActions, SecretMasker masker,
      String owner) {
    this.request = request;
    this.stages = stages;
    this.workspaces = workspaces;
    this.jobTimeout = jobTimeout;
    this.timer = timer;
    this.listener = listener;
    this.release = release;
    this.cancelActions = cancelActions;
    this.masker = masker;
    this.owner = owner;
  }

  String jobId() {
    return request.jobId();
  }

  /** The name of the caller that started the job. */
  String owner() {
    return owner;
  }

  SecretMasker masker() {
    return masker;
  }

  /**
   * Stops the job: interrupts the running stage and has its cancel actions run (on the cancel
   * executor, so the caller never waits for them). The first stop wins.
   *
   * @return false when the job had already been stopped
   */
  boolean stop(JobOutcome outcome, String code, String message) {
    ExecutionContext ctx;
    synchronized (lock) {
      if (stopOutcome != null) {
        return false;
      }
      stopOutcome = outcome;
      stopCode = code;
      stopMessage = message;
      if (inStage && thread != null) {
        thread.interrupt();
      }
      ctx = context;
    }
    if (ctx != null) {
      ctx.cancel();
    }
    return true;
  }

  private boolean stopped() {
    synchronized (lock) {
      return stopOutcome != null;
    }
  }

  @Override
  public void run() {
    synchronized (lock) {
      thread = Thread.currentThread();
    }
    MDC.put(Logging.JOB_ID, request.jobId());
    MDC.put(Logging.CALLER, owner);
    LogMasking.register(masker);
    long started = System.nanoTime();
    List<StageOutcome> outcomes = new ArrayList<>();
    List<PipelineStage> ran = new ArrayList<>();
    JobOutcome outcome = JobOutcome.SUCCEEDED;
    String failedStage = null;
    String code = null;
    String message = "Execution succeeded";
    Path workspace = null;
    ScheduledFuture<?> jobTimer = timer.schedule(
        () -> stop(JobOutcome.TIMED_OUT, ErrorMapping.JOB_TIMEOUT,
            "Execution timed out: the job ran longer than worker.job-timeout ("
                + human(jobTimeout) + ")"),
        jobTimeout.toNanos(), TimeUnit.NANOSECONDS);
    try {
      LOG.info("job started: {} ({}) -> {}", request.repoUrl(),
          request.branch().isEmpty() ? "default branch" : request.branch(), request.imageName());
      workspace = workspaces.create(request.jobId());
      ExecutionContext ctx =
          new ExecutionContext(request, workspace, masker, listener, cancelActions, owner);
      boolean alreadyStopped;
      synchronized (lock) {
        context = ctx;
        alreadyStopped = stopOutcome != null;
      }
      if (alreadyStopped) {
        ctx.cancel();
      }
      boolean completedAll = true;
      for (PipelineStage stage : stages) {
        if (stopped()) {
          completedAll = false;
          break;
        }
        StageOutcome stageOutcome = runStage(stage, ctx);
        ran.add(stage);
        outcomes.add(stageOutcome);
        safely(() -> listener.stageFinished(request.jobId(), stageOutcome));
        if (!stageOutcome.success()) {
          completedAll = false;
          failedStage = stage.id();
          if (!stopped()) {
            outcome = JobOutcome.FAILED;
            code = lastFailure.code();
            message = "stage '" + stage.id() + "' failed: " + stageOutcome.message();
          }
          break;
        }
      }
      if (!completedAll && stopped()) {
        synchronized (lock) {
          outcome = stopOutcome;
          code = stopCode;
          message = stopMessage;
        }
      }
    } catch (IOException e) {
      outcome = JobOutcome.FAILED;
      code = ErrorMapping.WORKSPACE;
      message = "cannot make the job's workspace under " + workspaces.root() + ": " + e;
    } catch (RuntimeException | Error e) {
      outcome = JobOutcome.FAILED;
      code = ErrorMapping.INTERNAL;
      message = "the worker failed while running the job: " + e;
      LOG.error("job failed inside the runtime", e);
    } finally {
      jobTimer.cancel(false);
      Thread.interrupted();
      cleanup(ran);
      if (workspace != null) {
        try {
          Workspaces.delete(workspace);
        } catch (IOException e) {
          LOG.error("cannot delete the workspace {}: {}", workspace, e.toString());
        }
      }
      if (outcome == JobOutcome.CANCELLED) {
        LOG.info(ErrorMapping.CANCELLED_MESSAGE);
      }
      JobResult jobResult = new JobResult(
          request.jobId(),
          outcome,
          masker.mask(message),
          Optional.ofNullable(failedStage),
          Optional.ofNullable(code),
          value(StageKeys.IMAGE_URI),
          value(StageKeys.IMAGE_DIGEST),
          value(StageKeys.COMMIT_SHA),
          List.copyOf(outcomes),
          Duration.ofNanos(System.nanoTime() - started),
          owner);
      LOG.info("job finished: {} in {} ms{}", outcome, jobResult.duration().toMillis(),
          code == null ? "" : " (" + code + ")");
      LogMasking.unregister(masker);
      release.accept(this);
      MDC.clear();
      safely(() -> listener.jobFinished(jobResult));
      result.complete(jobResult);
    }
  }

  private StageOutcome runStage(PipelineStage stage, ExecutionContext ctx) {
    safely(() -> listener.stageStarted(request.jobId(), stage.id()));
    ctx.enterStage(stage.id());
    LOG.info("stage started");
    ScheduledFuture<?> stageTimer = timer.schedule(
        () -> stop(JobOutcome.TIMED_OUT, ErrorMapping.STAGE_TIMEOUT,
            "Execution timed out: stage '" + stage.id() + "' ran longer than its timeout ("
                + human(stage.timeout()) + ", worker.stages." + stage.id() + ".timeout)"),
        stage.timeout().toNanos(), TimeUnit.NANOSECONDS);
    long started = System.nanoTime();
    Throwable failure = null;
    try {
      synchronized (lock) {
        inStage = true;
      }
      if (!stopped()) {
        stage.stage().execute(ctx);
      }
    } catch (Throwable t) {
      failure = t;
    } finally {
      synchronized (lock) {
        inStage = false;
      }
      Thread.interrupted();
      stageTimer.cancel(false);
    }
    Duration duration = Duration.ofNanos(System.nanoTime() - started);
    StageOutcome outcome;
    if (stopped()) {
      String why;
      synchronized (lock) {
        why = stopMessage;
      }
      outcome = new StageOutcome(stage.id(), false, duration, why);
    } else if (failure != null) {
      lastFailure = ErrorMapping.stageFailure(stage.id(), failure);
      String text = masker.mask(lastFailure.message());
      if (failure instanceof RuntimeException || failure instanceof Error) {
        LOG.error("stage failed unexpectedly: {}", masker.mask(String.valueOf(failure)));
      } else {
        LOG.warn("stage failed: {} ({})", text, lastFailure.code());
      }
      outcome = new StageOutcome(stage.id(), false, duration, text);
    } else {
      outcome = new StageOutcome(stage.id(), true, duration, "");
    }
    LOG.info("stage finished in {} ms: {}", duration.toMillis(),
        outcome.success() ? "ok" : "failed");
    ctx.leaveStage();
    return outcome;
  }

  private void cleanup(List<PipelineStage> ran) {
    ExecutionContext ctx;
    synchronized (lock) {
      ctx = context;
    }
    if (ctx == null) {
      return;
    }
    for (int i = ran.size() - 1; i >= 0; i--) {
      PipelineStage stage = ran.get(i);
      try {
        stage.stage().cleanup(ctx);
      } catch (RuntimeException e) {
        LOG.warn("stage '{}' failed to clean up: {}", stage.id(), masker.mask(e.toString()));
      }
      Thread.interrupted();
    }
  }

  private <T> Optional<T> value(StageKey<T> key) {
    ExecutionContext ctx;
    synchronized (lock) {
      ctx = context;
    }
    return ctx == null ? Optional.empty() : ctx.get(key);
  }

  private static void safely(Runnable r) {
    try {
      r.run();
    } catch (RuntimeException e) {
      LOG.warn("a job listener failed: {}", e.toString());
    }
  }

  static String human(Duration d) {
    if (d.toMillis() < 1000) {
      return d.toMillis() + "ms";
    }
    if (d.toSeconds() < 120) {
      return d.toSeconds() + "s";
    }
    return d.toMinutes() + "m";
  }
}

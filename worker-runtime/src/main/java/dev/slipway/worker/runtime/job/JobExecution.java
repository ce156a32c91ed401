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
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * One job's run through the pipeline, on its own thread. Owns the job's workspace, secrets and
 * timers, and guarantees the ending: whatever happens, the stages' cleanup runs (each within a
 * time limit), the workspace is deleted and the slot is released before the result is delivered.
 *
 * <p>Stopping always stops. A cancel or timeout interrupts the running stage and runs its cancel
 * actions; if the stage has not returned after {@code worker.stop-grace}, the processes it started
 * are killed; if it still has not returned, the job ends without it: it is reported with its
 * outcome, its slot released and its workspace removed, and the stuck thread is abandoned and
 * counted in {@link StuckThreads}.
 */
final class JobExecution implements Runnable {
  private static final Logger LOG = LoggerFactory.getLogger(JobExecution.class);
  /** After the kill, how long the stage still gets to return before it is abandoned. */
  private static final Duration AFTER_KILL = Duration.ofSeconds(1);

  /**
   * How stopping and cleaning up are bounded.
   *
   * @param stopGrace how long a stopped stage may take to return before its processes are killed
   * @param cleanupTimeout how long each cleanup (a stage's, the workspace's) may take
   * @param stuck where abandoned threads are counted
   * @param cleanups runs cleanups, so that one that hangs can be left behind
   * @param onlyJob whether no other job runs now: then every child process of the worker started
   *     since this job began is this job's
   */
  record Stopping(Duration stopGrace, Duration cleanupTimeout, StuckThreads stuck,
      ExecutorService cleanups, java.util.function.BooleanSupplier onlyJob) {}

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
  private final long outputLimit;
  private final Stopping stopping;
  private final java.util.function.Function<String, Optional<String>> repositoryCheck;
  final CompletableFuture<JobResult> result = new CompletableFuture<>();

  private final Object lock = new Object();
  private final long started = System.nanoTime();
  private final java.time.Instant startedAt = java.time.Instant.now();
  private Thread thread;
  private boolean inStage;
  private String currentStage;
  private boolean abandoned;
  private boolean finished;
  private ExecutionContext context;
  private Path workspace;
  private JobStateFile state;
  private JobOutcome stopOutcome;
  private String stopCode;
  private String stopMessage;
  private ScheduledFuture<?> jobTimer;
  /** What ran and how it went; guarded by {@link #lock}, read by whoever finishes the job. */
  private final List<StageOutcome> outcomes = new ArrayList<>();
  private final StageOptionCheck.Checked options;
  private final List<PipelineStage> ran = new ArrayList<>();
  private JobOutcome outcome = JobOutcome.SUCCEEDED;
  private String failedStage;
  private String code;
  private String message = "Execution succeeded";
  private boolean completedAll;
  /** The failure of the last stage that failed; read and written on the job's thread only. */
  private ErrorMapping.Failure lastFailure;

  JobExecution(JobRequestView request, StageOptionCheck.Checked options,
      List<PipelineStage> stages, Workspaces workspaces,
      Duration jobTimeout, ScheduledExecutorService timer, JobListener listener,
      Consumer<JobExecution> release, Executor cancelActions, SecretMasker masker,
      String owner, long outputLimit, Stopping stopping,
      java.util.function.Function<String, Optional<String>> repositoryCheck) {
    this.repositoryCheck = repositoryCheck;
    this.request = request;
    this.options = options;
    this.stages = stages;
    this.workspaces = workspaces;
    this.jobTimeout = jobTimeout;
    this.timer = timer;
    this.listener = listener;
    this.release = release;
    this.cancelActions = cancelActions;
    this.masker = masker;
    this.owner = owner;
    this.outputLimit = outputLimit;
    this.stopping = stopping;
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
   * executor, so the caller never waits for them), and arms the escalation. The first stop wins.
   *
   * @return false when the job had already been stopped
   */
  boolean stop(JobOutcome outcome, String code, String message) {
    ExecutionContext ctx;
    synchronized (lock) {
      if (stopOutcome != null || finished) {
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
    timer.schedule(this::escalate, stopping.stopGrace().toNanos(), TimeUnit.NANOSECONDS);
    return true;
  }

  private boolean stopped() {
    synchronized (lock) {
      return stopOutcome != null;
    }
  }

  /** The stage did not return within the stop grace: kill its processes, then leave it. */
  private void escalate() {
    String stage;
    synchronized (lock) {
      if (finished || !inStage) {
        return;
      }
      stage = currentStage;
    }
    ExecutionContext ctx;
    synchronized (lock) {
      ctx = context;
    }
    int killed = ctx == null ? 0 : ctx.killProcesses(
        stopping.onlyJob().getAsBoolean() ? Optional.of(startedAt) : Optional.empty());
    LOG.warn("job {}: stage '{}' has not returned {} after the job was stopped"
        + " (worker.stop-grace); killed {} process(es) it started", request.jobId(), stage,
        human(stopping.stopGrace()), killed);
    timer.schedule(() -> cancelActions.execute(this::abandon), AFTER_KILL.toNanos(),
        TimeUnit.NANOSECONDS);
  }

  /** Ends the job without its stuck stage thread. */
  private void abandon() {
    Thread stuckThread;
    String stage;
    synchronized (lock) {
      if (finished || !inStage) {
        return;
      }
      abandoned = true;
      stuckThread = thread;
      stage = currentStage;
      outcomes.add(new StageOutcome(stage, false,
          Duration.ofNanos(System.nanoTime() - started), stopMessage));
      failedStage = stage;
    }
    stopping.stuck().add(stuckThread, request.jobId(), "stage '" + stage + "'");
    Map<String, String> previous = MDC.getCopyOfContextMap();
    MDC.put(Logging.JOB_ID, request.jobId());
    MDC.put(Logging.CALLER, owner);
    try {
      finish();
    } finally {
      restore(previous);
    }
  }

  @Override
  public void run() {
    synchronized (lock) {
      thread = Thread.currentThread();
    }
    MDC.put(Logging.JOB_ID, request.jobId());
    MDC.put(Logging.CALLER, owner);
    LogMasking.register(request.jobId(), masker);
    synchronized (lock) {
      jobTimer = timer.schedule(
          () -> stop(JobOutcome.TIMED_OUT, ErrorMapping.JOB_TIMEOUT,
              "Execution timed out: the job ran longer than worker.job-timeout ("
                  + human(jobTimeout) + ")"),
          jobTimeout.toNanos(), TimeUnit.NANOSECONDS);
    }
    try {
      LOG.info("job started: {} ({}) -> {}", request.repoUrl(),
          request.branch().isEmpty() ? "default branch" : request.branch(), request.imageName());
      JobStateFile created = workspaces.create(request.jobId());
      Path dir = created.workspace();
      ExecutionContext ctx = new ExecutionContext(request, options, created, masker, listener,
          cancelActions, owner, outputLimit, repositoryCheck);
      boolean alreadyStopped;
      synchronized (lock) {
        state = created;
        workspace = dir;
        context = ctx;
        alreadyStopped = stopOutcome != null;
      }
      if (alreadyStopped) {
        ctx.cancel();
      }
      boolean all = true;
      for (PipelineStage stage : stages) {
        if (stopped()) {
          all = false;
          break;
        }
        StageOutcome stageOutcome = runStage(stage, ctx);
        if (isAbandoned()) {
          return; // the job was ended without this thread
        }
        safely(() -> listener.stageFinished(request.jobId(), stageOutcome));
        if (!stageOutcome.success()) {
          synchronized (lock) {
            failedStage = stage.id();
            if (stopOutcome == null) {
              outcome = JobOutcome.FAILED;
              code = lastFailure.code();
              message = "stage '" + stage.id() + "' failed: " + stageOutcome.message();
            }
          }
          all = false;
          break;
        }
      }
      synchronized (lock) {
        completedAll = all;
      }
    } catch (IOException e) {
      synchronized (lock) {
        outcome = JobOutcome.FAILED;
        code = ErrorMapping.WORKSPACE;
        message = "cannot make the job's workspace under " + workspaces.root() + ": " + e;
      }
    } catch (RuntimeException | Error e) {
      synchronized (lock) {
        outcome = JobOutcome.FAILED;
        code = ErrorMapping.INTERNAL;
        message = "the worker failed while running the job: " + e;
      }
      LOG.error("job failed inside the runtime", e);
    } finally {
      Thread.interrupted();
      if (!isAbandoned()) {
        finish();
      }
      MDC.clear();
    }
  }

  private boolean isAbandoned() {
    synchronized (lock) {
      return abandoned;
    }
  }

  /**
   * Ends the job once, on whichever thread gets here first: the job's own, or the one that
   * abandoned its stuck stage. Cleanups and the workspace's removal each have a time limit, and
   * nothing a plugin throws keeps the slot from being released or the caller from its answer.
   */
  private void finish() {
    List<PipelineStage> toClean;
    Path dir;
    JobStateFile stateFile;
    ExecutionContext ctx;
    synchronized (lock) {
      if (finished) {
        return;
      }
      finished = true;
      if (jobTimer != null) {
        jobTimer.cancel(false);
      }
      // A job stopped before its last stage returned ends as the stop says.
      if (stopOutcome != null && !completedAll) {
        outcome = stopOutcome;
        code = stopCode;
        message = stopMessage;
      }
      toClean = new ArrayList<>(ran);
      dir = workspace;
      stateFile = state;
      ctx = context;
    }
    JobResult jobResult = null;
    try {
      // The state file goes only once everything it names is gone; else the next start finishes.
      boolean clean = !abandonedThread();
      if (ctx != null) {
        for (int i = toClean.size() - 1; i >= 0; i--) {
          PipelineStage stage = toClean.get(i);
          ctx.cleaningUp(stage.id());
          clean &= bounded("the cleanup of stage '" + stage.id() + "'",
              () -> stage.stage().cleanup(ctx));
        }
        ctx.reportDroppedOutput();
      }
      if (dir != null) {
        java.util.concurrent.atomic.AtomicBoolean deleted =
            new java.util.concurrent.atomic.AtomicBoolean();
        clean &= bounded("the removal of the workspace " + dir, () -> {
          try {
            Workspaces.delete(dir);
            deleted.set(true);
          } catch (IOException e) {
            LOG.error("cannot delete the workspace {}: {}", dir, e.toString());
          }
        }) && deleted.get();
      }
      if (stateFile != null) {
        if (clean) {
          stateFile.delete();
        } else {
          LOG.warn("kept {}: what the job left is removed when the worker starts next",
              stateFile.file());
        }
      }
      if (outcome == JobOutcome.CANCELLED) {
        LOG.info(ErrorMapping.CANCELLED_MESSAGE);
      }
      jobResult = new JobResult(
          request.jobId(),
          outcome,
          masker.mask(message),
          Optional.ofNullable(failedStage),
          Optional.ofNullable(code),
          value(StageKeys.IMAGE_URI),
          value(StageKeys.IMAGE_DIGEST),
          value(StageKeys.COMMIT_SHA),
          extraImageUris(),
          List.copyOf(outcomes),
          Duration.ofNanos(System.nanoTime() - started),
          owner,
          errorKind(),
          retryable());
      LOG.info("job finished: {} in {} ms{}", outcome, jobResult.duration().toMillis(),
          code == null ? "" : " (" + code + ")");
    } catch (RuntimeException | Error e) {
      LOG.error("the job's ending failed inside the runtime", e);
    } finally {
      LogMasking.unregister(request.jobId(), masker);
      release.accept(this);
      if (jobResult == null) {
        jobResult = new JobResult(request.jobId(), JobOutcome.FAILED,
            "the worker failed while ending the job; see its log", Optional.ofNullable(failedStage),
            Optional.of(ErrorMapping.INTERNAL), Optional.empty(), Optional.empty(),
            Optional.empty(), List.of(), List.copyOf(outcomes), Duration.ofNanos(System.nanoTime() - started),
            owner, Optional.of(dev.slipway.worker.api.ErrorKind.INTERNAL), false);
      }
      JobResult delivered = jobResult;
      safely(() -> listener.jobFinished(delivered));
      result.complete(delivered);
    }
  }

  /** Whose fault the job's failure is: the failed stage's word, else the runtime's own code's. */
  private Optional<dev.slipway.worker.api.ErrorKind> errorKind() {
    if (code == null) {
      return Optional.empty();
    }
    return stageFailureDecides() ? Optional.of(lastFailure.kind()) : ErrorMapping.kindOf(code);
  }

  private boolean retryable() {
    if (code == null) {
      return false;
    }
    return stageFailureDecides() ? lastFailure.retryable() : ErrorMapping.retryable(code);
  }

  /** Whether the job ended with its last failed stage's own failure (not a stop, not a bug). */
  private boolean stageFailureDecides() {
    return lastFailure != null && outcome == JobOutcome.FAILED && code.equals(lastFailure.code());
  }

  /** Whether a stage thread of this job was abandoned (it may still make things). */
  private boolean abandonedThread() {
    synchronized (lock) {
      return abandoned;
    }
  }

  /**
   * Runs {@code work} within the cleanup time limit; past it, the thread is left behind.
   *
   * @return true when it returned, without throwing, within the limit
   */
  private boolean bounded(String what, Runnable work) {
    Map<String, String> mdc = MDC.getCopyOfContextMap();
    Thread[] runner = new Thread[1];
    java.util.concurrent.atomic.AtomicBoolean returned =
        new java.util.concurrent.atomic.AtomicBoolean();
    java.util.concurrent.atomic.AtomicBoolean threw =
        new java.util.concurrent.atomic.AtomicBoolean();
    Future<?> future = stopping.cleanups().submit(() -> {
      synchronized (runner) {
        runner[0] = Thread.currentThread();
      }
      restore(mdc);
      try {
        work.run();
      } catch (Throwable t) {
        threw.set(true);
        LOG.warn("{} failed: {}", what, masker.mask(t.toString()));
      } finally {
        synchronized (runner) {
          returned.set(true);
          stopping.stuck().remove(Thread.currentThread());
        }
        Thread.interrupted();
        MDC.clear();
      }
    });
    try {
      future.get(stopping.cleanupTimeout().toNanos(), TimeUnit.NANOSECONDS);
      return !threw.get();
    } catch (TimeoutException e) {
      future.cancel(true);
      synchronized (runner) {
        if (runner[0] != null && !returned.get()) {
          stopping.stuck().add(runner[0], request.jobId(), what + " (longer than"
              + " worker.cleanup-timeout, " + human(stopping.cleanupTimeout()) + ")");
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException e) {
      LOG.warn("{} failed: {}", what, masker.mask(String.valueOf(e.getCause())));
    }
    return false;
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
    long stageStarted = System.nanoTime();
    Throwable failure = null;
    try {
      synchronized (lock) {
        inStage = true;
        currentStage = stage.id();
        // Its cleanup runs even if it never returns.
        ran.add(stage);
      }
      if (!stopped()) {
        stage.stage().execute(ctx);
      }
    } catch (Throwable t) {
      failure = t;
    } finally {
      boolean wasAbandoned;
      synchronized (lock) {
        inStage = false;
        wasAbandoned = abandoned;
      }
      Thread.interrupted();
      stageTimer.cancel(false);
      if (wasAbandoned) {
        stopping.stuck().remove(Thread.currentThread());
      }
    }
    Duration duration = Duration.ofNanos(System.nanoTime() - stageStarted);
    StageOutcome stageOutcome;
    if (stopped()) {
      String why;
      synchronized (lock) {
        why = stopMessage;
      }
      stageOutcome = new StageOutcome(stage.id(), false, duration, why);
    } else if (failure != null) {
      lastFailure = ErrorMapping.stageFailure(stage.id(), failure);
      String text = masker.mask(lastFailure.message());
      if (failure instanceof RuntimeException || failure instanceof Error) {
        LOG.error("stage failed unexpectedly: {}", masker.mask(String.valueOf(failure)));
      } else {
        LOG.warn("stage failed: {} ({})", text, lastFailure.code());
      }
      stageOutcome = new StageOutcome(stage.id(), false, duration, text);
    } else {
      stageOutcome = new StageOutcome(stage.id(), true, duration, "");
    }
    synchronized (lock) {
      if (!abandoned) {
        outcomes.add(stageOutcome);
      }
    }
    LOG.info("stage finished in {} ms: {}", duration.toMillis(),
        stageOutcome.success() ? "ok" : "failed");
    ctx.leaveStage();
    return stageOutcome;
  }

  /** The extra tags' references as the push stage published them, in the order of extra_tags. */
  private List<String> extraImageUris() {
    List<?> uris = value(StageKeys.EXTRA_IMAGE_URIS).orElse(List.of());
    return uris.stream().map(String::valueOf).toList();
  }

  private <T> Optional<T> value(StageKey<T> key) {
    ExecutionContext ctx;
    synchronized (lock) {
      ctx = context;
    }
    return ctx == null ? Optional.empty() : ctx.get(key);
  }

  private static void restore(Map<String, String> previous) {
    if (previous == null) {
      MDC.clear();
    } else {
      MDC.setContextMap(previous);
    }
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

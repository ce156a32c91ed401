package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.SecretBearing;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.runtime.logging.Logging;
import dev.slipway.worker.runtime.logging.SecretMasker;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/** The {@link JobContext} of one job, shared by its stages. */
final class ExecutionContext implements JobContext {
  /** Stage output goes to this logger, so operators see it with the job id on every line. */
  private static final Logger JOB_LOG = LoggerFactory.getLogger("dev.slipway.job");
  private static final Logger LOG = LoggerFactory.getLogger(ExecutionContext.class);

  private final JobRequestView request;
  private final StageOptionCheck.Checked options;
  private final Path workspace;
  private final JobStateFile state;
  private final SecretMasker masker;
  private final JobListener listener;
  private final Executor cancelActions;
  private final Map<StageKey<?>, Object> values = new ConcurrentHashMap<>();
  private final List<Runnable> pendingActions = new ArrayList<>();
  private final List<ProcessHandle> processes = new java.util.concurrent.CopyOnWriteArrayList<>();
  private volatile String stage = "";
  private boolean cancelled;

  /**
   * @param cancelActions runs the stages' cancel actions, so that they never hold up the thread
   *     that cancels (a gRPC server thread, the timeout timer)
   */
  private final String caller;
  private final java.util.function.Function<String, Optional<String>> repositoryCheck;
  /** The job's output budget, {@code worker.limits.job-output}, in bytes. */
  private final long outputLimit;
  private final java.util.concurrent.atomic.AtomicLong outputBytes =
      new java.util.concurrent.atomic.AtomicLong();
  private final java.util.concurrent.atomic.AtomicLong droppedLines =
      new java.util.concurrent.atomic.AtomicLong();

  ExecutionContext(JobRequestView request, StageOptionCheck.Checked options, JobStateFile state,
      SecretMasker masker,
      JobListener listener, Executor cancelActions, String caller, long outputLimit,
      java.util.function.Function<String, Optional<String>> repositoryCheck) {
    this.state = state;
    this.repositoryCheck = repositoryCheck;
    this.caller = caller;
    this.outputLimit = outputLimit;
    this.request = request;
    this.options = options;
    this.workspace = state.workspace();
    this.masker = masker;
    this.listener = listener;
    this.cancelActions = cancelActions;
  }

  void enterStage(String id) {
    stage = id;
    MDC.put(Logging.STAGE, id);
  }

  /**
   * Attributes what happens from now on (log lines, leftover records) to stage {@code id}, whose
   * cleanup runs now; no MDC, since cleanups run on threads of their own.
   */
  void cleaningUp(String id) {
    stage = id;
  }

  /** Drops the cancel actions of the stage that just returned. */
  void leaveStage() {
    synchronized (pendingActions) {
      pendingActions.clear();
    }
    MDC.remove(Logging.STAGE);
  }

  /** Marks the job cancelled and runs the cancel actions registered so far. */
  void cancel() {
    List<Runnable> actions;
    synchronized (pendingActions) {
      if (cancelled) {
        return;
      }
      cancelled = true;
      actions = new ArrayList<>(pendingActions);
      pendingActions.clear();
    }
    for (Runnable action : actions) {
      runLater(action);
    }
  }

  @Override
  public String jobId() {
    return request.jobId();
  }

  @Override
  public JobRequestView request() {
    return request;
  }

  @Override
  public dev.slipway.worker.api.StageOptions options() {
    return options.of(stage);
  }

  @Override
  public Path workspace() {
    return workspace;
  }

  @Override
  public <T> Optional<T> get(StageKey<T> key) {
    return Optional.ofNullable(values.get(key)).map(key.type()::cast);
  }

  @Override
  public <T> void publish(StageKey<T> key, T value) {
    Objects.requireNonNull(value, "value");
    if (!key.type().isInstance(value)) {
      throw new IllegalArgumentException("stage '" + stage + "' published a "
          + value.getClass().getName() + " under '" + key.name() + "', which takes a "
          + key.type().getName());
    }
    // Mask first, so no event published in between can carry the secret.
    if (value instanceof Secret secret) {
      masker.add(secret.reveal());
    } else if (value instanceof SecretBearing bearing) {
      bearing.secrets().forEach(s -> masker.add(s.reveal()));
    }
    values.put(key, value);
  }

  @Override
  public JobLog log() {
    return new JobLog() {
      @Override
      public void line(String line) {
        for (String part : line.split("\r\n|\r|\n", -1)) {
          emit(part);
        }
      }

      @Override
      public OutputStream lineStream() {
        return new LineSplitter(masker::mask, ExecutionContext.this::emit);
      }
    };
  }

  private void emit(String raw) {
    // Counted before masking: the budget is the job's output, not what masking makes of it.
    long total = outputBytes.addAndGet(raw.length() + 1L);
    if (total > outputLimit) {
      if (droppedLines.getAndIncrement() == 0) {
        write("(output limit reached: the job wrote more than " + outputLimit + " bytes"
            + " (worker.limits.job-output); further lines are counted and dropped, the job goes"
            + " on)");
      }
      return;
    }
    write(raw);
  }

  /** Reports the lines dropped past the output limit, if any; once, at the end of the job. */
  void reportDroppedOutput() {
    long dropped = droppedLines.get();
    if (dropped > 0) {
      write("(" + (dropped) + " line(s) of output dropped past worker.limits.job-output)");
    }
  }

  private void write(String raw) {
    String line = masker.mask(raw);
    // Stages also log from threads of their own (a process's output pump, an SDK callback):
    // every line still carries the job and the stage.
    Map<String, String> previous = MDC.getCopyOfContextMap();
    MDC.put(Logging.JOB_ID, request.jobId());
    MDC.put(Logging.CALLER, caller);
    MDC.put(Logging.STAGE, stage);
    try {
      JOB_LOG.info("{}", line);
    } finally {
      if (previous == null) {
        MDC.clear();
      } else {
        MDC.setContextMap(previous);
      }
    }
    try {
      listener.log(request.jobId(), stage, line);
    } catch (RuntimeException e) {
      LOG.warn("a job listener failed: {}", e.toString());
    }
  }

  @Override
  public Optional<String> repositoryRefusal(String url) {
    return repositoryCheck.apply(url);
  }

  @Override
  public void processStarted(ProcessHandle process) {
    processes.add(process);
    state.recordProcess(process);
  }

  @Override
  public void recordLeftover(String what) throws StageException {
    state.recordLeftover(stage, what);
  }

  /**
   * Kills the trees of the processes the job's stages reported and, when {@code since} is given
   * (no other job runs), of every child of the worker started since then.
   *
   * @return how many processes were killed
   */
  int killProcesses(Optional<java.time.Instant> since) {
    java.util.Set<ProcessHandle> targets = new java.util.LinkedHashSet<>();
    for (ProcessHandle p : processes) {
      p.descendants().forEach(targets::add);
      targets.add(p);
    }
    since.ifPresent(t -> ProcessHandle.current().descendants()
        .filter(p -> p.info().startInstant().map(s -> !s.isBefore(t)).orElse(false))
        .forEach(targets::add));
    int killed = 0;
    for (ProcessHandle p : targets) {
      if (p.isAlive() && p.destroyForcibly()) {
        killed++;
      }
    }
    return killed;
  }

  @Override
  public void addSecret(String secret) {
    masker.add(secret);
  }

  @Override
  public boolean isCancelled() {
    synchronized (pendingActions) {
      return cancelled;
    }
  }

  @Override
  public void onCancel(Runnable action) {
    synchronized (pendingActions) {
      if (!cancelled) {
        pendingActions.add(action);
        return;
      }
    }
    runLater(action);
  }

  private void runLater(Runnable action) {
    String jobId = request.jobId();
    cancelActions.execute(() -> {
      MDC.put(Logging.JOB_ID, jobId);
      try {
        runQuietly(action);
      } finally {
        MDC.remove(Logging.JOB_ID);
      }
    });
  }

  private static void runQuietly(Runnable action) {
    try {
      action.run();
    } catch (RuntimeException e) {
      LOG.warn("a cancel action failed: {}", e.toString());
    }
  }
}

package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.runtime.config.Limits;
import dev.slipway.worker.runtime.errors.ErrorMapping;
import dev.slipway.worker.runtime.errors.RejectedJobException;
import dev.slipway.worker.runtime.errors.RejectedJobException.Reason;
import dev.slipway.worker.runtime.logging.SecretMasker;
import dev.slipway.worker.runtime.pipeline.Pipeline;
import dev.slipway.worker.runtime.pipeline.PipelineStage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Admits, runs, cancels and counts jobs. A job is admitted only when a slot is free
 * ({@code worker.max-concurrent-jobs}) and the worker is not draining; it is refused otherwise, at
 * once, never queued: the orchestrator picks another worker.
 */
public final class JobManager implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(JobManager.class);

  /** What Ping reports. */
  public enum Status {
    FREE,
    BUSY,
    DRAINING
  }

  /** The owner of every job on a worker without {@code worker.callers}. */
  public static final String ANONYMOUS = "anonymous";

  private final Pipeline pipeline;
  private final Workspaces workspaces;
  private final int maxConcurrentJobs;
  private final Duration jobTimeout;
  private final String workerId;
  private final JobListener observer;
  private final ExecutorService jobThreads;
  private final ScheduledExecutorService timer;
  private final ExecutorService cancelActions;
  private final List<String> workerSecrets;
  private final RequestValidator validator;
  private final Duration stopGrace;
  private final Duration cleanupTimeout;
  private final StuckThreads stuck = new StuckThreads();
  private final ExecutorService cleanups = Executors.newCachedThreadPool(named("job-cleanup", true));
  private final Limits limits;
  private final Map<String, JobExecution> running = new LinkedHashMap<>();
  private boolean draining;

  /**
   * @param observer sees every job's events, for logs and metrics
   * @param workerSecrets secrets of the worker's configuration and environment, masked in every
   *     job's events as in the worker's log
   */
  public JobManager(String workerId, Pipeline pipeline, Workspaces workspaces,
      int maxConcurrentJobs, Duration jobTimeout, JobListener observer,
      List<String> workerSecrets, Limits limits, Duration stopGrace, Duration cleanupTimeout) {
    this.limits = limits;
    this.stopGrace = stopGrace;
    this.cleanupTimeout = cleanupTimeout;
    this.validator = new RequestValidator(limits);
    this.workerId = workerId;
    this.pipeline = pipeline;
    this.workspaces = workspaces;
    this.maxConcurrentJobs = maxConcurrentJobs;
    this.jobTimeout = jobTimeout;
    this.observer = observer;
    // Daemon threads: a stage thread that never returns must not keep the process alive.
    this.jobThreads = Executors.newCachedThreadPool(named("job", true));
    this.timer = Executors.newSingleThreadScheduledExecutor(named("job-timer", true));
    this.cancelActions = Executors.newCachedThreadPool(named("job-cancel", true));
    this.workerSecrets = List.copyOf(workerSecrets);
  }

  /** Starts a job for the one trusted caller of a worker without {@code worker.callers}. */
  public JobHandle submit(JobRequestView request, JobListener listener)
      throws RejectedJobException {
    return submit(request, listener, ANONYMOUS, url -> Optional.empty(), id -> { });
  }

  /**
   * Starts a job, or refuses it at once.
   *
   * @param request the request; an empty job id is replaced by a generated one
   * @param listener receives this job's events
   * @param owner the name of the caller that starts it: only it (and admins) may act on the job
   * @param repositoryCheck why the caller may not clone a URL, for the repositories a stage
   *     fetches beyond repo_url (submodules)
   * @param admitted called with the job's id once it is admitted, before it starts
   */
  public JobHandle submit(JobRequestView request, JobListener listener, String owner,
      java.util.function.Function<String, Optional<String>> repositoryCheck,
      java.util.function.Consumer<String> admitted)
      throws RejectedJobException {
    return submit(request, Map.of(), listener, owner, repositoryCheck, admitted);
  }

  /**
   * Starts a job with per-job stage options, or refuses it at once.
   *
   * @param stageOptions the job's {@code stage_options}, {@code "<stage-id>.<option>" -> value}
   */
  public JobHandle submit(JobRequestView request, Map<String, String> stageOptions,
      JobListener listener, String owner,
      java.util.function.Function<String, Optional<String>> repositoryCheck,
      java.util.function.Consumer<String> admitted)
      throws RejectedJobException {
    JobRequestView withId = withJobId(request);
    validate(withId, stageOptions);
    StageOptionCheck.Checked options = StageOptionCheck.check(stageOptions, pipeline.stages());
    JobExecution execution;
    synchronized (this) {
      if (draining) {
        throw new RejectedJobException(Reason.DRAINING, "worker " + workerId
            + " is shutting down and takes no new jobs; send the job to another worker");
      }
      // Busy first: a caller learns nothing of other callers' job ids from which refusal it gets
      // (with one slot, another caller's job always makes the worker busy).
      if (running.size() >= maxConcurrentJobs) {
        List<String> own = running.values().stream().filter(e -> e.owner().equals(owner))
            .map(JobExecution::jobId).toList();
        throw new RejectedJobException(Reason.BUSY, "worker " + workerId + " is busy: all "
            + maxConcurrentJobs + " job slot(s) are taken (worker.max-concurrent-jobs)"
            + (own.isEmpty() ? "" : ", by your job(s) " + String.join(", ", own))
            + "; retry later or send the job to another worker");
      }
      JobExecution same = running.get(withId.jobId());
      if (same != null) {
        if (!same.owner().equals(owner)) {
          // Another caller's id: refused as if busy, without saying whose it is.
          throw new RejectedJobException(Reason.BUSY, "worker " + workerId + " cannot take job "
              + withId.jobId() + " now; retry later, send it to another worker, or leave job_id"
              + " empty to get a unique one");
        }
        throw new RejectedJobException(Reason.DUPLICATE_JOB_ID, "job " + withId.jobId()
            + " is already running on worker " + workerId + "; use a new job_id");
      }
      execution = new JobExecution(withId, options, pipeline.stages(), workspaces, jobTimeout,
          timer, new Both(observer, listener), this::release, cancelActions,
          masker(withId, options), owner,
          limits.jobOutput(), new JobExecution.Stopping(stopGrace, cleanupTimeout, stuck,
              cleanups, this::oneJobRuns), repositoryCheck);
      running.put(withId.jobId(), execution);
      admitted.accept(withId.jobId());
    }
    try {
      jobThreads.execute(execution);
    } catch (RuntimeException e) {
      release(execution);
      throw e;
    }
    return new JobHandle(withId.jobId(), execution.result);
  }

  /**
   * The runtime's and every stage's checks of a request, without starting anything; {@link
   * #submit} makes them again.
   *
   * @return the request with its job id, generated when it had none
   */
  public JobRequestView validate(JobRequestView request) throws RejectedJobException {
    return validate(request, Map.of());
  }

  /**
   * The runtime's and every stage's checks of a request and its stage options, without starting
   * anything; {@link #submit} makes them again.
   *
   * @return the request with its job id, generated when it had none
   */
  public JobRequestView validate(JobRequestView request, Map<String, String> stageOptions)
      throws RejectedJobException {
    JobRequestView withId = withJobId(request);
    StageOptionCheck.Checked options;
    try {
      validator.validate(withId);
      options = StageOptionCheck.check(stageOptions, pipeline.stages());
    } catch (RejectedJobException e) {
      // The refusal quotes what was refused, which may be a secret pasted into the wrong field.
      throw new RejectedJobException(e.reason(), masker(withId).mask(e.getMessage()));
    }
    validateByStages(withId, options);
    if (!withId.extraTags().isEmpty() && pushTargets(withId).isEmpty()) {
      throw new RejectedJobException(Reason.INVALID_REQUEST, "extra_tags: no stage of this"
          + " worker's pipeline " + pipeline.stages().stream().map(PipelineStage::id).toList()
          + " pushes the image; leave extra_tags empty or send the job to a worker that pushes");
    }
    return withId;
  }

  /** Where the pipeline's stages would push the request's image; call after {@link #validate}. */
  public List<PushTarget> pushTargets(JobRequestView request) throws RejectedJobException {
    List<PushTarget> targets = new ArrayList<>();
    askStages(request, StageOptionCheck.Checked.NONE, "naming where it pushes",
        s -> targets.addAll(s.stage().pushTargets(request)));
    return targets;
  }

  private void validateByStages(JobRequestView request, StageOptionCheck.Checked options)
      throws RejectedJobException {
    askStages(request, options, "checking a request",
        s -> s.stage().validate(request, options.of(s.id())));
  }

  /** One question about a request to each stage of the pipeline. */
  private interface StageQuestion {
    void ask(PipelineStage stage) throws StageException;
  }

  /**
   * Asks each stage about a request before the job exists: a {@link StageException} is the
   * request's fault ({@code INVALID_REQUEST}, its message masked), anything else a bug in the
   * stage ({@code INTERNAL}, the detail only in the worker's log: the trace could hold the token).
   */
  private void askStages(JobRequestView request, StageOptionCheck.Checked options, String what,
      StageQuestion question) throws RejectedJobException {
    for (PipelineStage stage : pipeline.stages()) {
      try {
        question.ask(stage);
      } catch (StageException e) {
        throw new RejectedJobException(Reason.INVALID_REQUEST,
            masker(request, options).mask(e.getMessage()) + " (" + e.code() + ")");
      } catch (RuntimeException e) {
        LOG.error("stage '{}' failed while {}: {}", stage.id(), what,
            masker(request, options).mask(e.toString()));
        throw new RejectedJobException(Reason.INTERNAL, "stage '" + stage.id()
            + "' failed while checking the request; see the worker's log");
      }
    }
  }


  /** A job's masker: its token and the worker's own secrets. */
  private SecretMasker masker(JobRequestView request) {
    return masker(request, StageOptionCheck.Checked.NONE);
  }

  /** A job's masker: its token, build secrets, secret stage options and the worker's secrets. */
  private SecretMasker masker(JobRequestView request, StageOptionCheck.Checked options) {
    SecretMasker masker = new SecretMasker();
    options.secretValues().forEach(masker::add);
    // A token too short to be one is refused, and masking it would garble the refusal.
    request.token().map(Secret::reveal).filter(t -> t.length() >= limits.tokenMinLength())
        .ifPresent(masker::add);
    request.buildSecrets().values().forEach(s -> masker.add(s.reveal()));
    workerSecrets.forEach(masker::add);
    return masker;
  }

  private static JobRequestView withJobId(JobRequestView r) {
    if (!r.jobId().isEmpty()) {
      return r;
    }
    // 122 random bits: a job id cannot be guessed, so it cannot be aimed at.
    return r.toBuilder().jobId(UUID.randomUUID().toString()).build();
  }

  private synchronized boolean oneJobRuns() {
    return running.size() == 1;
  }

  /**
   * Removes what the jobs of a worker that died left behind: their processes, what their stages
   * recorded, their workspaces ({@link Recovery}). Call at start-up, with the workspace root
   * locked, before serving. Problems are logged, never thrown; a job running now is refused.
   */
  public void removeLeftovers() {
    synchronized (this) {
      if (!running.isEmpty()) {
        throw new IllegalStateException("leftovers are removed at start-up, before any job runs");
      }
    }
    new Recovery(workspaces, pipeline.stages(), cleanupTimeout).run();
  }

  /** Threads that stopped jobs left behind. */
  public StuckThreads stuckThreads() {
    return stuck;
  }

  private synchronized void release(JobExecution execution) {
    running.remove(execution.jobId(), execution);
    notifyAll();
  }

  /**
   * Cancels a running job; its result reports outcome CANCELLED with message
   * {@value ErrorMapping#CANCELLED_MESSAGE}. Returns at once; the job stops on its own thread.
   *
   * @return false when no job with that id is running, or it was already being stopped (it timed
   *     out, or another cancel came first)
   */
  public boolean cancel(String jobId) {
    JobExecution execution;
    synchronized (this) {
      execution = running.get(jobId);
    }
    if (execution == null) {
      return false;
    }
    LOG.info("cancelling job {}", jobId);
    return execution.stop(JobOutcome.CANCELLED, ErrorMapping.CANCELLED,
        ErrorMapping.CANCELLED_MESSAGE);
  }

  /** The running job with that id, if any. */
  public synchronized Optional<JobHandle> find(String jobId) {
    return Optional.ofNullable(running.get(jobId)).map(e -> new JobHandle(jobId, e.result));
  }

  /** The name of the caller that started the running job with that id, if any. */
  public synchronized Optional<String> ownerOf(String jobId) {
    return Optional.ofNullable(running.get(jobId)).map(JobExecution::owner);
  }

  /** Cancels every running job. */
  public void cancelAll() {
    for (String id : runningJobIds()) {
      cancel(id);
    }
  }

  public synchronized Status status() {
    if (draining) {
      return Status.DRAINING;
    }
    return running.size() >= maxConcurrentJobs ? Status.BUSY : Status.FREE;
  }

  public synchronized List<String> runningJobIds() {
    return new ArrayList<>(running.keySet());
  }

  public synchronized Optional<String> currentJobId() {
    return running.keySet().stream().findFirst();
  }

  /** The first running job whose owner passes {@code visible}, if any. */
  public synchronized Optional<String> currentJobId(java.util.function.Predicate<String> visible) {
    return running.values().stream().filter(e -> visible.test(e.owner()))
        .map(JobExecution::jobId).findFirst();
  }

  /** From now on every new job is refused with {@link Reason#DRAINING}. */
  public synchronized void drain() {
    draining = true;
  }

  /** Waits until no job runs; true if that happened within {@code timeout}. */
  public synchronized boolean awaitIdle(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!running.isEmpty()) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return true;
  }

  @Override
  public void close() {
    drain();
    cancelAll();
    try {
      awaitIdle(Duration.ofSeconds(10));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    jobThreads.shutdownNow();
    timer.shutdownNow();
    cancelActions.shutdownNow();
    cleanups.shutdownNow();
  }

  private static ThreadFactory named(String prefix, boolean daemon) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
      t.setDaemon(daemon);
      return t;
    };
  }

  /** Sends each event to the worker-wide observer, then to the job's own listener. */
  private record Both(JobListener first, JobListener second) implements JobListener {
    @Override
    public void stageStarted(String jobId, String stage) {
      each(l -> l.stageStarted(jobId, stage));
    }

    @Override
    public void log(String jobId, String stage, String line) {
      each(l -> l.log(jobId, stage, line));
    }

    @Override
    public void stageFinished(String jobId, StageOutcome outcome) {
      each(l -> l.stageFinished(jobId, outcome));
    }

    @Override
    public void jobFinished(JobResult result) {
      each(l -> l.jobFinished(result));
    }

    private void each(java.util.function.Consumer<JobListener> event) {
      for (JobListener listener : List.of(first, second)) {
        try {
          event.accept(listener);
        } catch (RuntimeException e) {
          LOG.warn("a job listener failed: {}", e.toString());
        }
      }
    }
  }
}

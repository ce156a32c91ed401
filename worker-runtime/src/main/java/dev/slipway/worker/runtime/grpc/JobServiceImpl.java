package dev.slipway.worker.runtime.grpc;

import dev.slipway.proto.v1.CancelJobRequest;
import dev.slipway.proto.v1.CancelJobResponse;
import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.GetJobRequest;
import dev.slipway.proto.v1.GetJobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.JobState;
import dev.slipway.proto.v1.SubmitJobResponse;
import dev.slipway.proto.v1.WatchJobRequest;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.errors.ErrorMapping;
import dev.slipway.worker.runtime.job.JobHandle;
import dev.slipway.worker.runtime.job.JobListener;
import dev.slipway.worker.runtime.job.JobManager;
import dev.slipway.worker.runtime.job.JobOutcome;
import dev.slipway.worker.runtime.job.JobResult;
import dev.slipway.worker.runtime.errors.RejectedJobException;
import dev.slipway.worker.runtime.job.StageOutcome;
import dev.slipway.worker.runtime.security.Caller;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker's gRPC face. RunJob and StreamJob return at once and answer when the job ends, so a
 * job never holds a server thread; a caller that goes away, or whose deadline passes, cancels its
 * job.
 */
public final class JobServiceImpl extends JobServiceGrpc.JobServiceImplBase {
  private static final Logger LOG = LoggerFactory.getLogger(JobServiceImpl.class);
  /** How long CancelJob waits for the job to have stopped before it answers. */
  private static final long CANCEL_WAIT_SECONDS = 10;

  private final JobManager jobs;
  private final String workerId;
  private final boolean authenticates;
  private final JobJournals journals;

  /**
   * @param authenticates whether callers are told apart ({@code worker.callers}); then a job
   *     another caller started looks, to everyone but admins, as if it did not exist
   * @param journals the events of running and retained jobs
   */
  JobServiceImpl(JobManager jobs, String workerId, boolean authenticates, JobJournals journals) {
    this.jobs = jobs;
    this.workerId = workerId;
    this.authenticates = authenticates;
    this.journals = journals;
  }

  @Override
  public void runJob(JobRequest request, StreamObserver<JobResponse> observer) {
    ServerCallStreamObserver<JobResponse> call = (ServerCallStreamObserver<JobResponse>) observer;
    Optional<Started> started = start(request, call, true);
    started.ifPresent(s -> s.handle().result().whenComplete((result, error) -> {
      if (call.isCancelled()) {
        return;
      }
      if (error != null) {
        call.onError(ErrorMapping.internal("the job failed inside the worker; see its log")
            .asRuntimeException());
      } else {
        call.onNext(ProtoMapping.toProto(result));
        call.onCompleted();
      }
    }));
  }

  @Override
  public void streamJob(JobRequest request, StreamObserver<JobEvent> observer) {
    ServerCallStreamObserver<JobEvent> call = (ServerCallStreamObserver<JobEvent>) observer;
    // Its end cancels the job: the watch's cancel handler does both.
    start(request, call, false).ifPresent(s -> s.journal().watch(call, 0, () -> cancelFor(s)));
  }

  @Override
  public void submitJob(JobRequest request, StreamObserver<SubmitJobResponse> observer) {
    ServerCallStreamObserver<SubmitJobResponse> call =
        (ServerCallStreamObserver<SubmitJobResponse>) observer;
    // Detached: no connection's end cancels it; only CancelJob, a timeout or the drain does.
    start(request, call, false).ifPresent(s -> {
      call.onNext(SubmitJobResponse.newBuilder().setJobId(s.handle().jobId()).build());
      call.onCompleted();
    });
  }

  @Override
  public void watchJob(WatchJobRequest request, StreamObserver<JobEvent> observer) {
    Optional<JobJournals.Entry> entry = visibleJob(request.getJobId(), observer);
    if (entry.isEmpty()) {
      return;
    }
    if (request.getAfterSeq() < 0) {
      observer.onError(ErrorMapping.invalidArgument("after_seq must be 0 or more: the last seq"
          + " this watcher saw, 0 for all").asRuntimeException());
      return;
    }
    entry.get().journal().watch((ServerCallStreamObserver<JobEvent>) observer,
        request.getAfterSeq(), () -> { });
  }

  @Override
  public void getJob(GetJobRequest request, StreamObserver<GetJobResponse> observer) {
    Optional<JobJournals.Entry> entry = visibleJob(request.getJobId(), observer);
    if (entry.isEmpty()) {
      return;
    }
    JobJournal journal = entry.get().journal();
    GetJobResponse.Builder response = GetJobResponse.newBuilder()
        .setJobId(entry.get().jobId())
        .setLastSeq(journal.lastSeq());
    Optional<JobResponse> result = journal.result();
    if (result.isPresent()) {
      response.setState(JobState.JOB_STATE_FINISHED).setResult(result.get());
    } else {
      response.setState(JobState.JOB_STATE_RUNNING).setCurrentStage(journal.currentStage());
    }
    observer.onNext(response.build());
    observer.onCompleted();
  }

  /**
   * The running or retained job with that id, if the caller may see it; otherwise the call is
   * answered NOT_FOUND (another caller's job looks exactly like none) and empty returned.
   */
  private Optional<JobJournals.Entry> visibleJob(String rawId, StreamObserver<?> observer) {
    String id = rawId.trim();
    if (id.isEmpty()) {
      observer.onError(ErrorMapping.invalidArgument("job_id is required: the id the job got"
          + " from SubmitJob, RunJob or StreamJob").asRuntimeException());
      return Optional.empty();
    }
    Caller caller = CallerInterceptor.CALLER.get();
    Optional<JobJournals.Entry> entry = journals.find(id)
        .filter(e -> caller.mayAccessJobOf(e.owner()));
    if (entry.isEmpty()) {
      observer.onError(ErrorMapping.notFound("no job '" + id + "' is known to worker " + workerId
          + (authenticates ? " for caller '" + caller.name() + "'" : "")
          + "; finished jobs are kept for worker.jobs.retention").asRuntimeException());
    }
    return entry;
  }

  /** A started job and its journal. */
  private record Started(JobHandle handle, JobJournal journal) {}

  private void cancelFor(Started started) {
    if (jobs.cancel(started.handle().jobId())) {
      LOG.info("the caller of job {} went away or its deadline passed", started.handle().jobId());
    }
  }

  /**
   * Admits the job with a journal of its events; empty if it was refused (and the call answered).
   *
   * @param tied whether the call's end (client gone, deadline passed) cancels the job
   */
  private Optional<Started> start(JobRequest request, ServerCallStreamObserver<?> call,
      boolean tied) {
    AtomicReference<String> jobId = new AtomicReference<>();
    if (tied) {
      call.setOnCancelHandler(() -> {
        String id = jobId.get();
        if (id != null && jobs.cancel(id)) {
          LOG.info("the caller of job {} went away or its deadline passed", id);
        }
      });
    }
    JobJournal journal = journals.newJournal();
    JobListener listener = new JobListener() {
      @Override
      public void stageStarted(String id, String stage) {
        journal.stageStarted(id, stage);
      }

      @Override
      public void log(String id, String stage, String line) {
        journal.log(id, stage, line);
      }

      @Override
      public void stageFinished(String id, StageOutcome outcome) {
        journal.stageFinished(id, outcome);
      }

      @Override
      public void jobFinished(JobResult result) {
        journal.jobFinished(result);
        journals.finished(result.jobId(), journal);
      }
    };
    Caller caller = CallerInterceptor.CALLER.get();
    JobHandle handle;
    try {
      handle = jobs.submit(ProtoMapping.toView(request), request.getStageOptionsMap(), listener,
          caller.name(),
          CallerInterceptor.REPOSITORY_CHECK.get(),
          id -> journals.add(id, caller.name(), journal));
    } catch (RejectedJobException e) {
      LOG.info("job refused: {}", e.getMessage());
      call.onError(ErrorMapping.status(e).asRuntimeException());
      return Optional.empty();
    }
    jobId.set(handle.jobId());
    if (tied && call.isCancelled()) {
      jobs.cancel(handle.jobId());
    }
    return Optional.of(new Started(handle, journal));
  }

  @Override
  public void cancelJob(CancelJobRequest request, StreamObserver<CancelJobResponse> observer) {
    String id = request.getJobId().trim();
    if (id.isEmpty()) {
      observer.onError(ErrorMapping.invalidArgument(
          "job_id is required: the id of the job to cancel").asRuntimeException());
      return;
    }
    Caller caller = CallerInterceptor.CALLER.get();
    Optional<JobHandle> handle = jobs.find(id);
    boolean visible = handle.isPresent()
        && jobs.ownerOf(id).map(caller::mayAccessJobOf).orElse(false);
    if (!visible) {
      String message = "no job '" + id + "' is running on worker " + workerId
          + (authenticates ? " for caller '" + caller.name() + "'" : "");
      if (authenticates) {
        // Unknown and another caller's job get the same answer: nothing to learn from it.
        observer.onError(ErrorMapping.notFound(message).asRuntimeException());
        return;
      }
      observer.onNext(CancelJobResponse.newBuilder().setCancelled(false)
          .setMessage(message + "; running: " + jobs.runningJobIds())
          .build());
      observer.onCompleted();
      return;
    }
    LOG.info("caller '{}' cancels job {}", caller.name(), id);
    boolean ours = jobs.cancel(id);
    // Answer once the job has stopped, so the caller knows the worker is free again; without
    // holding a server thread meanwhile (Ping and health must stay responsive).
    // A copy: the time limit of this answer must never complete the job's own result.
    handle.get().result().copy().orTimeout(CANCEL_WAIT_SECONDS, TimeUnit.SECONDS)
        .whenComplete((result, error) -> {
          CancelJobResponse.Builder response = CancelJobResponse.newBuilder();
          if (error != null) {
            response.setCancelled(false).setMessage("cancellation requested; job " + id
                + " has not stopped within " + CANCEL_WAIT_SECONDS + " s");
          } else if (result.outcome() == JobOutcome.CANCELLED && ours) {
            response.setCancelled(true).setMessage(ErrorMapping.CANCELLED_MESSAGE);
          } else {
            response.setCancelled(false).setMessage("job " + id + " ended "
                + result.outcome().name().toLowerCase(java.util.Locale.ROOT)
                + " before it could be cancelled: " + result.message());
          }
          observer.onNext(response.build());
          observer.onCompleted();
        });
  }

  @Override
  public void ping(PingRequest request, StreamObserver<PingResponse> observer) {
    PingResponse.Builder response = PingResponse.newBuilder()
        .setWorkerId(workerId)
        .setStatus(switch (jobs.status()) {
          case FREE -> WorkerStatus.WORKER_STATUS_FREE;
          case BUSY -> WorkerStatus.WORKER_STATUS_BUSY;
          case DRAINING -> WorkerStatus.WORKER_STATUS_DRAINING;
        });
    // Only the job's owner and admins learn its id.
    Caller caller = CallerInterceptor.CALLER.get();
    jobs.currentJobId(caller::mayAccessJobOf).ifPresent(response::setCurrentJobId);
    observer.onNext(response.build());
    observer.onCompleted();
  }
}

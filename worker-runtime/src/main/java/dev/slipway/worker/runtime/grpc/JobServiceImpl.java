package dev.slipway.worker.runtime.grpc;

import dev.slipway.proto.v1.CancelJobRequest;
import dev.slipway.proto.v1.CancelJobResponse;
import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.LogLine;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.StageFinished;
import dev.slipway.proto.v1.StageStarted;
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

  /**
   * @param authenticates whether callers are told apart ({@code worker.callers}); then a job
   *     another caller started looks, to everyone but admins, as if it did not exist
   */
  public JobServiceImpl(JobManager jobs, String workerId, boolean authenticates) {
    this.jobs = jobs;
    this.workerId = workerId;
    this.authenticates = authenticates;
  }

  @Override
  public void runJob(JobRequest request, StreamObserver<JobResponse> observer) {
    ServerCallStreamObserver<JobResponse> call = (ServerCallStreamObserver<JobResponse>) observer;
    Optional<JobHandle> handle = start(request, call, JobListener.NONE);
    handle.ifPresent(h -> h.result().whenComplete((result, error) -> {
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
    start(request, call, new StreamingListener(call));
  }

  /** Submits the job and ties its life to the call's; empty if the job was refused. */
  private Optional<JobHandle> start(
      JobRequest request, ServerCallStreamObserver<?> call, JobListener listener) {
    AtomicReference<String> jobId = new AtomicReference<>();
    call.setOnCancelHandler(() -> {
      String id = jobId.get();
      if (id != null && jobs.cancel(id)) {
        LOG.info("the caller of job {} went away or its deadline passed", id);
      }
    });
    JobHandle handle;
    try {
      handle = jobs.submit(ProtoMapping.toView(request), listener,
          CallerInterceptor.CALLER.get().name(), CallerInterceptor.REPOSITORY_CHECK.get());
    } catch (RejectedJobException e) {
      LOG.info("job refused: {}", e.getMessage());
      call.onError(ErrorMapping.status(e).asRuntimeException());
      return Optional.empty();
    }
    jobId.set(handle.jobId());
    if (call.isCancelled()) {
      jobs.cancel(handle.jobId());
    }
    return Optional.of(handle);
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

  /**
   * Turns a job's events into JobEvents on the stream. Log lines are dropped, and counted, while
   * the client does not keep up, so a slow reader cannot make the worker buffer a whole build's
   * output; stage events and the result are always sent.
   */
  private static final class StreamingListener implements JobListener {
    private final ServerCallStreamObserver<JobEvent> call;
    private long dropped;

    StreamingListener(ServerCallStreamObserver<JobEvent> call) {
      this.call = call;
    }

    @Override
    public void stageStarted(String jobId, String stage) {
      send(event(jobId).setStageStarted(StageStarted.newBuilder().setStage(stage)));
    }

    @Override
    public synchronized void log(String jobId, String stage, String line) {
      if (!call.isReady()) {
        dropped++;
        return;
      }
      reportDropped(jobId, stage);
      send(event(jobId).setLog(LogLine.newBuilder().setStage(stage).setLine(line)));
    }

    private void reportDropped(String jobId, String stage) {
      if (dropped > 0) {
        send(event(jobId).setLog(LogLine.newBuilder().setStage(stage).setLine("(" + dropped
            + " log lines dropped: the client did not read them fast enough)")));
        dropped = 0;
      }
    }

    @Override
    public synchronized void stageFinished(String jobId, StageOutcome outcome) {
      reportDropped(jobId, outcome.stage());
      send(event(jobId).setStageFinished(
          StageFinished.newBuilder().setResult(ProtoMapping.toProto(outcome))));
    }

    @Override
    public void jobFinished(JobResult result) {
      synchronized (this) {
        reportDropped(result.jobId(), "");
      }
      send(event(result.jobId()).setResult(ProtoMapping.toProto(result)));
      synchronized (this) {
        if (!call.isCancelled()) {
          call.onCompleted();
        }
      }
    }

    private static JobEvent.Builder event(String jobId) {
      return JobEvent.newBuilder().setJobId(jobId).setTimestampMs(System.currentTimeMillis());
    }

    private synchronized void send(JobEvent.Builder event) {
      if (!call.isCancelled()) {
        call.onNext(event.build());
      }
    }
  }
}

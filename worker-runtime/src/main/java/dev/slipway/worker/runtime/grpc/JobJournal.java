package dev.slipway.worker.runtime.grpc;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.LogLine;
import dev.slipway.proto.v1.StageFinished;
import dev.slipway.proto.v1.StageStarted;
import dev.slipway.worker.runtime.job.JobListener;
import dev.slipway.worker.runtime.job.JobResult;
import dev.slipway.worker.runtime.job.StageOutcome;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One job's events, numbered 1, 2, 3 ... in the order they happened, the same in every stream:
 * a bounded buffer of them for watchers that come later or come back ({@code WatchJob} with
 * {@code after_seq}), and the live watchers. Each watcher has its own flow control: one that
 * reads too slowly loses log lines (counted, and told), never a stage event or the result, and
 * never slows the job or other watchers.
 */
final class JobJournal implements JobListener {
  /** Log events a watcher may have queued before new ones are dropped for it. */
  static final int WATCHER_QUEUE = 256;

  private final int maxEvents;
  private final long maxBytes;
  private final ArrayDeque<JobEvent> buffer = new ArrayDeque<>();
  private final List<Watcher> watchers = new ArrayList<>();
  private long bufferedBytes;
  private long evicted;
  private long seq;
  private String currentStage = "";
  private JobResponse result;

  /**
   * @param maxEvents the most events kept for replay ({@code worker.jobs.event-buffer.events})
   * @param maxBytes the most bytes of events kept for replay
   */
  JobJournal(int maxEvents, long maxBytes) {
    this.maxEvents = maxEvents;
    this.maxBytes = maxBytes;
  }

  @Override
  public void stageStarted(String jobId, String stage) {
    synchronized (this) {
      currentStage = stage;
    }
    append(event(jobId).setStageStarted(StageStarted.newBuilder().setStage(stage)));
  }

  @Override
  public void log(String jobId, String stage, String line) {
    append(event(jobId).setLog(LogLine.newBuilder().setStage(stage).setLine(line)));
  }

  @Override
  public void stageFinished(String jobId, StageOutcome outcome) {
    append(event(jobId).setStageFinished(
        StageFinished.newBuilder().setResult(ProtoMapping.toProto(outcome))));
  }

  @Override
  public void jobFinished(JobResult jobResult) {
    JobResponse response = ProtoMapping.toProto(jobResult);
    List<Watcher> done;
    synchronized (this) {
      result = response;
      currentStage = "";
      done = new ArrayList<>(watchers);
      watchers.clear();
    }
    append(event(jobResult.jobId()).setResult(response), done);
  }

  private static JobEvent.Builder event(String jobId) {
    return JobEvent.newBuilder().setJobId(jobId).setTimestampMs(System.currentTimeMillis());
  }

  private void append(JobEvent.Builder builder) {
    append(builder, null);
  }

  /** Numbers, keeps and hands out one event; {@code finishing} are the last event's watchers. */
  private void append(JobEvent.Builder builder, List<Watcher> finishing) {
    List<Watcher> to;
    JobEvent event;
    synchronized (this) {
      event = builder.setSeq(++seq).build();
      buffer.addLast(event);
      bufferedBytes += event.getSerializedSize();
      while (buffer.size() > 1 && (buffer.size() > maxEvents || bufferedBytes > maxBytes)) {
        bufferedBytes -= buffer.removeFirst().getSerializedSize();
        evicted++;
      }
      to = finishing != null ? finishing : new ArrayList<>(watchers);
      // Offered under the lock, so every watcher gets events in seq order.
      for (Watcher w : to) {
        w.offer(event);
        if (finishing != null) {
          w.completeWhenDrained();
        }
      }
    }
    for (Watcher w : to) {
      w.drain();
    }
  }

  /** The job's last seq so far. */
  synchronized long lastSeq() {
    return seq;
  }

  synchronized String currentStage() {
    return currentStage;
  }

  /** The job's response, once it has finished. */
  synchronized Optional<JobResponse> result() {
    return Optional.ofNullable(result);
  }

  /** Drops the events kept for replay (a finished job over the retention budget); keeps the result. */
  synchronized void trim() {
    if (result != null) {
      evicted += buffer.size();
      buffer.clear();
      bufferedBytes = 0;
    }
  }

  synchronized long bufferedBytes() {
    return bufferedBytes;
  }

  /**
   * Streams the events with seq above {@code afterSeq} to {@code call}: those kept, then live ones,
   * ending with the result.
   *
   * @param gone runs when the call goes away (the client left, its deadline passed), after the
   *     watcher is detached
   */
  void watch(ServerCallStreamObserver<JobEvent> call, long afterSeq, Runnable gone) {
    Watcher watcher = new Watcher(call);
    synchronized (this) {
      long oldestKept = buffer.isEmpty() ? seq + 1 : buffer.peekFirst().getSeq();
      long lost = Math.max(0, oldestKept - 1 - Math.max(afterSeq, 0));
      if (lost > 0) {
        watcher.notice(buffer.isEmpty() ? "" : buffer.peekFirst().getJobId(), "(" + lost
            + " earlier event(s) of this job are no longer kept by the worker"
            + " (worker.jobs.event-buffer); the stream starts at seq " + oldestKept + ")");
      }
      for (JobEvent event : buffer) {
        if (event.getSeq() > afterSeq) {
          watcher.offer(event);
        }
      }
      if (result != null) {
        watcher.completeWhenDrained();
      } else {
        watchers.add(watcher);
      }
    }
    call.setOnReadyHandler(watcher::drain);
    Runnable detach = () -> {
      synchronized (this) {
        watchers.remove(watcher);
      }
      gone.run();
    };
    call.setOnCancelHandler(detach);
    if (call.isCancelled()) {
      detach.run();
      return;
    }
    watcher.drain();
  }

  /** One stream's queue: stage events and the result always, log lines while it keeps up. */
  private static final class Watcher {
    private final ServerCallStreamObserver<JobEvent> call;
    private final ArrayDeque<JobEvent> queue = new ArrayDeque<>();
    private int queuedLogs;
    private long dropped;
    private String jobId = "";
    private String stage = "";
    private boolean complete;
    private boolean closed;

    Watcher(ServerCallStreamObserver<JobEvent> call) {
      this.call = call;
    }

    synchronized void offer(JobEvent event) {
      jobId = event.getJobId();
      if (event.hasLog()) {
        stage = event.getLog().getStage();
        if (queuedLogs >= WATCHER_QUEUE) {
          dropped++;
          return;
        }
        queuedLogs++;
      }
      queue.addLast(event);
    }

    /** A notice of the worker's own, outside the job's numbering (seq 0). */
    synchronized void notice(String job, String line) {
      queue.addLast(JobEvent.newBuilder().setJobId(job).setTimestampMs(System.currentTimeMillis())
          .setLog(LogLine.newBuilder().setStage("").setLine(line)).build());
    }

    synchronized void completeWhenDrained() {
      complete = true;
    }

    synchronized void drain() {
      if (closed) {
        return;
      }
      if (call.isCancelled()) {
        closed = true;
        return;
      }
      while (!queue.isEmpty() && call.isReady()) {
        JobEvent next = queue.peekFirst();
        if (dropped > 0 && !next.hasLog()) {
          // Before the next stage event or the result: say what this stream missed.
          call.onNext(JobEvent.newBuilder().setJobId(jobId)
              .setTimestampMs(System.currentTimeMillis())
              .setLog(LogLine.newBuilder().setStage(stage).setLine("(" + dropped
                  + " log lines dropped: the client did not read them fast enough)"))
              .build());
          dropped = 0;
          continue;
        }
        queue.removeFirst();
        if (next.hasLog() && next.getSeq() != 0) {
          queuedLogs--;
        }
        call.onNext(next);
      }
      if (complete && queue.isEmpty()) {
        closed = true;
        call.onCompleted();
      }
    }
  }
}

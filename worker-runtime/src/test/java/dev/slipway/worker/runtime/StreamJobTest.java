package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** StreamJob: the same job as RunJob, with its events as they happen. */
class StreamJobTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
  }

  @Test
  void eventsArriveInOrderAndTheResultIsLast() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish, test-consume]");
    channel = TestWorkers.channel(worker);

    List<JobEvent> events = new ArrayList<>();
    Iterator<JobEvent> stream = JobServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .streamJob(TestWorkers.request().setJobId("streamed").build());
    stream.forEachRemaining(events::add);

    List<String> kinds = events.stream().map(e -> e.getEventCase() + ":" + switch (e
        .getEventCase()) {
      case STAGE_STARTED -> e.getStageStarted().getStage();
      case STAGE_FINISHED -> e.getStageFinished().getResult().getStage();
      case LOG -> e.getLog().getStage();
      default -> "";
    }).toList();
    assertEquals(List.of(
        "STAGE_STARTED:test-publish", "LOG:test-publish", "LOG:test-publish",
        "STAGE_FINISHED:test-publish",
        "STAGE_STARTED:test-consume", "LOG:test-consume", "STAGE_FINISHED:test-consume",
        "RESULT:"), kinds);
    assertTrue(events.stream().allMatch(e -> e.getJobId().equals("streamed")));
    assertTrue(events.stream().allMatch(e -> e.getTimestampMs() > 0));
    JobEvent last = events.get(events.size() - 1);
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, last.getResult().getOutcome());
    assertEquals("sha256:0123456789abcdef0123456789abcdef01234567",
        last.getResult().getImageDigest());
    assertTrue(events.get(3).getStageFinished().getResult().getSuccess());
  }

  @Test
  void aClientThatDoesNotReadLosesLogLinesButNeverTheResult() throws Exception {
    // A stage that logs as fast as it can, for a client that reads nothing until the job is over.
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.stages.test-block { duration = 2500ms, log-interval = 0ms }");
    // A small, fixed HTTP/2 window, as a slow client over a slow link would have.
    channel = io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
        .forAddress("127.0.0.1", worker.port()).usePlaintext().flowControlWindow(64 * 1024).build();
    List<JobEvent> events = new CopyOnWriteArrayList<>();
    java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
    java.util.concurrent.atomic.AtomicReference<io.grpc.stub.ClientCallStreamObserver<
        dev.slipway.proto.v1.JobRequest>> call = new java.util.concurrent.atomic.AtomicReference<>();
    JobServiceGrpc.newStub(channel).streamJob(TestWorkers.request().setJobId("slow-reader").build(),
        new io.grpc.stub.ClientResponseObserver<dev.slipway.proto.v1.JobRequest, JobEvent>() {
          @Override
          public void beforeStart(
              io.grpc.stub.ClientCallStreamObserver<dev.slipway.proto.v1.JobRequest> stream) {
            stream.disableAutoRequestWithInitial(1);
            call.set(stream);
          }

          @Override
          public void onNext(JobEvent value) {
            events.add(value);
          }

          @Override
          public void onError(Throwable t) {
            done.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            done.complete(null);
          }
        });
    // The job runs to its end while the client reads nothing: the worker is not held up.
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(10));

    call.get().request(Integer.MAX_VALUE);
    done.get(30, TimeUnit.SECONDS);
    JobEvent last = events.get(events.size() - 1);
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, last.getResult().getOutcome());
    assertTrue(events.stream().anyMatch(e -> e.hasStageFinished()), "stage events are kept");
    assertTrue(events.stream().anyMatch(e -> e.hasLog()
        && e.getLog().getLine().matches("\\(\\d+ log lines dropped: .*")), "dropped lines are counted");
  }

  @Test
  void logLinesStreamWhileTheStageIsStillRunning() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]");
    channel = TestWorkers.channel(worker);
    List<JobEvent> events = new CopyOnWriteArrayList<>();
    Context.CancellableContext call = Context.current().withCancellation();
    call.run(() -> JobServiceGrpc.newStub(channel).streamJob(
        TestWorkers.request().build(), new StreamObserver<>() {
          @Override
          public void onNext(JobEvent value) {
            events.add(value);
          }

          @Override
          public void onError(Throwable t) {}

          @Override
          public void onCompleted() {}
        }));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (events.stream().filter(JobEvent::hasLog).count() < 2 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertTrue(events.stream().filter(JobEvent::hasLog).count() >= 2, events.toString());
    assertFalse(events.stream().anyMatch(JobEvent::hasResult));

    // A streaming caller that goes away cancels its job too.
    call.cancel(null);
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(1));
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }
}

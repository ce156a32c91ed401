package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Stopping drains: DRAINING, new jobs refused, a running job gets its grace period. */
class DrainTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
  }

  @Test
  void runningJobIsCancelledAfterTheGracePeriodAndNewJobsAreRefused() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.shutdown-grace-period = 1s");
    channel = TestWorkers.channel(worker);
    var running = JobServiceGrpc.newFutureStub(channel)
        .runJob(TestWorkers.request().setJobId("long").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));

    Thread stopper = new Thread(worker::stop);
    stopper.start();
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_DRAINING, Duration.ofSeconds(2));

    StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
        () -> JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS)
            .runJob(TestWorkers.request().build()));
    assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode());

    JobResponse response = running.get(10, TimeUnit.SECONDS);
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, response.getOutcome());
    stopper.join(15_000);
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void jobThatFinishesWithinTheGracePeriodSucceeds() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.stages.test-block.duration = 600ms\nworker.shutdown-grace-period = 10s");
    channel = TestWorkers.channel(worker);
    var running = JobServiceGrpc.newFutureStub(channel).runJob(TestWorkers.request().build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));

    Thread stopper = new Thread(worker::stop);
    stopper.start();

    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED,
        running.get(10, TimeUnit.SECONDS).getOutcome());
    stopper.join(15_000);
  }
}

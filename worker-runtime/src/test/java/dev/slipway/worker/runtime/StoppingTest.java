package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.CancelJobRequest;
import dev.slipway.proto.v1.CancelJobResponse;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stopping always stops: a stage that ignores interrupts, one that waits on a child process, a
 * cleanup that hangs. Each ends with its outcome, a released slot and no workspace within the
 * grace; a stuck thread is counted and turns health NOT_SERVING after the stuck limit.
 */
class StoppingTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws Exception {
    TestWorkers.close(worker, channel);
  }

  private JobServiceGrpc.JobServiceFutureStub start(String hocon) throws Exception {
    worker = TestWorkers.start(dir, hocon);
    channel = TestWorkers.channel(worker);
    return JobServiceGrpc.newFutureStub(channel);
  }

  private CancelJobResponse cancel(String id) {
    return JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .cancelJob(CancelJobRequest.newBuilder().setJobId(id).build());
  }

  private ServingStatus health() {
    return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance()).getStatus();
  }

  @Test
  void aStageThatIgnoresInterruptsIsLeftBehindAndTheSlotReleased() throws Exception {
    var stub = start("worker.pipeline = [test-stubborn]\n"
        + "worker.stages.test-stubborn.duration = 8s\n"
        + "worker.stop-grace = 500ms\nworker.stuck-stage-limit = 1s\n");
    Future<JobResponse> job = stub.runJob(TestWorkers.request().setJobId("stubborn-1").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    Thread.sleep(500); // BUSY comes at admission; the stage itself must have started

    long cancelled = System.nanoTime();
    cancel("stubborn-1");
    JobResponse result = job.get(10, TimeUnit.SECONDS);
    Duration took = Duration.ofNanos(System.nanoTime() - cancelled);
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, result.getOutcome(), result.toString());
    assertEquals("test-stubborn", result.getFailedStage());
    assertTrue(took.compareTo(Duration.ofSeconds(4)) < 0, "released within the grace: " + took);
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
    assertEquals(0, TestWorkers.workspaceCount(dir));
    assertEquals(1, worker.jobs().stuckThreads().count());

    // Stuck for longer than the limit: unhealthy, so a liveness probe restarts the worker.
    awaitHealth(ServingStatus.NOT_SERVING, Duration.ofSeconds(5));
    // Once the thread returns at last, the worker is healthy again.
    awaitHealth(ServingStatus.SERVING, Duration.ofSeconds(15));
    assertEquals(0, worker.jobs().stuckThreads().count());
  }

  @Test
  void aStageWaitingOnAChildProcessIsFreedByKillingIt() throws Exception {
    var stub = start("worker.pipeline = [test-stubborn]\n"
        + "worker.stages.test-stubborn { child-process = true, duration = 120s }\n"
        + "worker.stop-grace = 500ms\n");
    Future<JobResponse> job = stub.runJob(TestWorkers.request().setJobId("child-1").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    long pid = awaitChildPid();
    assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));

    cancel("child-1");
    JobResponse result = job.get(10, TimeUnit.SECONDS);
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, result.getOutcome(), result.toString());
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false),
        "the child was killed");
    assertEquals(0, worker.jobs().stuckThreads().count(), "the stage returned once it died");
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void aCleanupThatHangsDoesNotHoldTheSlot() throws Exception {
    var stub = start("worker.pipeline = [test-stubborn]\n"
        + "worker.stages.test-stubborn { ignore-interrupts = false, hang-cleanup = true,"
        + " duration = 6s }\n"
        + "worker.cleanup-timeout = 500ms\n");
    Future<JobResponse> job = stub.runJob(TestWorkers.request().setJobId("cleanup-1").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    Thread.sleep(500); // BUSY comes at admission; the stage itself must have started

    long cancelled = System.nanoTime();
    cancel("cleanup-1");
    JobResponse result = job.get(10, TimeUnit.SECONDS);
    Duration took = Duration.ofNanos(System.nanoTime() - cancelled);
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, result.getOutcome(), result.toString());
    assertTrue(took.compareTo(Duration.ofSeconds(3)) < 0, "within the cleanup limit: " + took);
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
    assertEquals(0, TestWorkers.workspaceCount(dir), "the workspace is removed all the same");
    assertEquals(1, worker.jobs().stuckThreads().count());
  }

  @Test
  void aCancelThatOutlastsCancelJobsWaitDoesNotChangeTheJobsOwnResult() throws Exception {
    // The stage returns on its own after 11 s, later than CancelJob waits (10 s), sooner than the
    // stop grace: CancelJob says it has not stopped yet, RunJob still gets CANCELLED.
    var stub = start("worker.pipeline = [test-stubborn]\n"
        + "worker.stages.test-stubborn.duration = 11s\n"
        + "worker.stop-grace = 30s\n");
    Future<JobResponse> job = stub.runJob(TestWorkers.request().setJobId("slow-1").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    Thread.sleep(500); // BUSY comes at admission; the stage itself must have started
    CancelJobResponse answer = cancel("slow-1");
    assertFalse(answer.getCancelled(), answer.toString());
    assertTrue(answer.getMessage().contains("has not stopped within"), answer.getMessage());
    JobResponse result = job.get(15, TimeUnit.SECONDS);
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, result.getOutcome(), result.toString());
    assertEquals("worker.cancelled", result.getErrorCode());
  }

  private void awaitHealth(ServingStatus status, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (health() != status && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertEquals(status, health());
  }

  /** The pid of the child the stubborn stage started, from its own log line. */
  private long awaitChildPid() throws InterruptedException {
    Pattern started = Pattern.compile("sleep 120");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (System.nanoTime() < deadline) {
      var child = ProcessHandle.current().children()
          .filter(p -> p.info().commandLine().map(c -> started.matcher(c).find()).orElse(false))
          .findFirst();
      if (child.isPresent()) {
        return child.get().pid();
      }
      Thread.sleep(20);
    }
    throw new AssertionError("the stage's child did not start");
  }
}

package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.CancelJobRequest;
import dev.slipway.proto.v1.CancelJobResponse;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.StageResult;
import dev.slipway.proto.v1.WorkerStatus;
import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** RunJob, CancelJob and Ping over a real gRPC socket on loopback, with the test stages. */
class JobServiceTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
  }

  private JobServiceGrpc.JobServiceBlockingStub start(String hocon) throws Exception {
    worker = TestWorkers.start(dir, hocon);
    channel = TestWorkers.channel(worker);
    return JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  @Test
  void successfulJobReportsOutputsOfItsStagesAndRemovesItsWorkspace() throws Exception {
    var stub = start("worker.pipeline = [test-publish, test-consume]\n"
        + "worker.stages.test-publish.commit-sha = \"abc123\"");

    JobResponse response = stub.runJob(TestWorkers.request().setJobId("job-1").build());

    assertTrue(response.getSuccess(), response.toString());
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, response.getOutcome());
    assertEquals("job-1", response.getJobId());
    assertEquals("abc123", response.getCommitSha());
    assertEquals("registry.test:5000/acme/app:1.0", response.getImageUri());
    assertEquals("sha256:abc123", response.getImageDigest());
    assertEquals("", response.getErrorCode());
    assertEquals(2, response.getStagesCount());
    assertEquals("test-publish", response.getStages(0).getStage());
    assertEquals("test-consume", response.getStages(1).getStage());
    assertTrue(response.getStagesList().stream().allMatch(StageResult::getSuccess));
    assertEquals(0, TestWorkers.workspaceCount(dir));
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
  }

  @Test
  void emptyJobIdIsReplacedByAGeneratedOne() throws Exception {
    var stub = start("worker.pipeline = [test-publish]");
    JobResponse first = stub.runJob(TestWorkers.request().build());
    JobResponse second = stub.runJob(TestWorkers.request().build());
    assertFalse(first.getJobId().isBlank());
    assertFalse(first.getJobId().equals(second.getJobId()));
  }

  @Test
  void failingStageIsANormalResponseAndTheWorkerTakesTheNextJob() throws Exception {
    var stub = start("worker.pipeline = [test-publish, test-fail, test-consume]\n"
        + "worker.stages.test-fail { code = \"git.auth-failed\", message = \"401 from server\" }");

    JobResponse failed = stub.runJob(TestWorkers.request().setJobId("bad").build());

    assertFalse(failed.getSuccess());
    assertEquals(JobOutcome.JOB_OUTCOME_FAILED, failed.getOutcome());
    assertEquals("test-fail", failed.getFailedStage());
    assertEquals("git.auth-failed", failed.getErrorCode());
    assertTrue(failed.getMessage().contains("401 from server"), failed.getMessage());
    // The stage after the failing one never starts.
    assertEquals(2, failed.getStagesCount());
    assertFalse(failed.getStages(1).getSuccess());
    assertEquals(0, TestWorkers.workspaceCount(dir));

    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
    JobResponse again = stub.runJob(TestWorkers.request().setJobId("again").build());
    assertEquals("again", again.getJobId());
    assertEquals("test-fail", again.getFailedStage());
  }

  @Test
  void aFailureSaysWhoseFaultItIsAndWhetherARetryCouldHelp() throws Exception {
    var stub = start("worker.pipeline = [test-fail]\n"
        + "worker.stages.test-fail { code = \"push.failed\", retryable = true }");
    JobResponse transient_ = stub.runJob(TestWorkers.request().build());
    assertEquals(dev.slipway.proto.v1.ErrorKind.ERROR_KIND_EXTERNAL, transient_.getErrorKind());
    assertTrue(transient_.getRetryable(), "the stage said the failure is transient");
    TestWorkers.close(worker, channel);
    stub = start("worker.pipeline = [test-fail]\n"
        + "worker.stages.test-fail { code = \"git.repo-too-large\", kind = INVALID_REQUEST,"
        + " retryable = true }");
    JobResponse permanent = stub.runJob(TestWorkers.request().build());
    assertEquals(dev.slipway.proto.v1.ErrorKind.ERROR_KIND_INVALID_REQUEST,
        permanent.getErrorKind());
    assertFalse(permanent.getRetryable(), "the same wrong request fails again, whatever the stage"
        + " says");
    TestWorkers.close(worker, channel);
    stub = start("worker.pipeline = [test-block]\nworker.stages.test-block.timeout = 200ms");
    JobResponse timedOut = stub.runJob(TestWorkers.request().build());
    assertEquals("worker.stage-timeout", timedOut.getErrorCode());
    assertEquals(dev.slipway.proto.v1.ErrorKind.ERROR_KIND_EXTERNAL, timedOut.getErrorKind());
    assertTrue(timedOut.getRetryable(), "a timeout may pass");
    JobResponse ok = start2();
    assertEquals(dev.slipway.proto.v1.ErrorKind.ERROR_KIND_UNSPECIFIED, ok.getErrorKind());
  }

  private JobResponse start2() throws Exception {
    TestWorkers.close(worker, channel);
    return start("worker.pipeline = [test-publish]").runJob(TestWorkers.request().build());
  }

  @Test
  void stageThatThrowsABugIsReportedAsAnInternalError() throws Exception {
    var stub = start("worker.pipeline = [test-fail]\n"
        + "worker.stages.test-fail { unchecked = true, message = \"boom\" }");
    JobResponse response = stub.runJob(TestWorkers.request().build());
    assertEquals(JobOutcome.JOB_OUTCOME_FAILED, response.getOutcome());
    assertEquals("worker.internal-error", response.getErrorCode());
    assertTrue(response.getMessage().contains("IllegalStateException: boom"),
        response.getMessage());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void invalidRequestsAreRefusedNamingTheFieldBeforeAnyWorkspaceExists() throws Exception {
    var stub = start("worker.pipeline = [test-block]");

    assertInvalid(stub, TestWorkers.request().setRepoUrl(""), "repo_url");
    assertInvalid(stub, TestWorkers.request().setImageName(" "), "image_name");
    assertInvalid(stub, TestWorkers.request().setJobId("../etc"), "job_id");
    assertInvalid(stub, TestWorkers.request().setRepoUrl("--upload-pack=evil"), "repo_url");
    assertInvalid(stub, TestWorkers.request().setDockerfilePath("/etc/passwd"), "dockerfile_path");
    assertInvalid(stub, TestWorkers.request().putBuildArgs("1BAD", "x"), "build_args");
    assertInvalid(stub, TestWorkers.request().setBranch("main branch"), "branch");

    assertEquals(0, TestWorkers.workspaceCount(dir),
        "no workspace may be made for a refused request");
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
  }

  private static void assertInvalid(JobServiceGrpc.JobServiceBlockingStub stub,
      dev.slipway.proto.v1.JobRequest.Builder request, String field) {
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> stub.runJob(request.build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains(field), e.getStatus().getDescription());
  }

  @Test
  void aSecondJobWhileBusyIsRefusedAtOnceNamingTheRunningJob() throws Exception {
    var stub = start("worker.pipeline = [test-block]");
    var future = JobServiceGrpc.newFutureStub(channel)
        .runJob(TestWorkers.request().setJobId("long-one").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));

    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(TestWorkers.request().setJobId("second").build()));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("long-one"),
        e.getStatus().getDescription());

    PingResponse ping = TestWorkers.ping(channel);
    assertEquals(WorkerStatus.WORKER_STATUS_BUSY, ping.getStatus());
    assertEquals("long-one", ping.getCurrentJobId());
    assertEquals(worker.settings().id(), ping.getWorkerId());
    future.cancel(true);
  }

  @Test
  void cancelJobStopsTheRunningStageAndFreesTheWorker() throws Exception {
    var stub = start("worker.pipeline = [test-block, test-publish]");
    ListenableFuture<JobResponse> running = JobServiceGrpc.newFutureStub(channel)
        .runJob(TestWorkers.request().setJobId("to-cancel").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (TestWorkers.workspaceCount(dir) == 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertEquals(1, TestWorkers.workspaceCount(dir), "the running job has its workspace");

    CancelJobResponse cancel =
        stub.cancelJob(CancelJobRequest.newBuilder().setJobId("to-cancel").build());

    assertTrue(cancel.getCancelled(), cancel.toString());
    JobResponse response = running.get(5, TimeUnit.SECONDS);
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, response.getOutcome());
    assertEquals("Execution cancelled", response.getMessage());
    assertEquals("test-block", response.getFailedStage());
    assertEquals("worker.cancelled", response.getErrorCode());
    assertEquals(1, response.getStagesCount(), "no later stage may start");
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void cancelJobOfAnUnknownJobSaysSo() throws Exception {
    var stub = start("worker.pipeline = [test-publish]");
    CancelJobResponse cancel =
        stub.cancelJob(CancelJobRequest.newBuilder().setJobId("nope").build());
    assertFalse(cancel.getCancelled());
    assertTrue(cancel.getMessage().contains("nope"), cancel.getMessage());
  }

  @Test
  void callerThatGoesAwayCancelsItsJobAndTheWorkerIsFreeWithinASecond() throws Exception {
    start("worker.pipeline = [test-block]");
    var running = JobServiceGrpc.newFutureStub(channel)
        .runJob(TestWorkers.request().setJobId("abandoned").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));

    running.cancel(true);

    Duration took =
        TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(1));
    assertTrue(took.toMillis() < 1000, "took " + took);
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void passedDeadlineCancelsTheJob() throws Exception {
    start("worker.pipeline = [test-block]");
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> JobServiceGrpc.newBlockingStub(channel)
            .withDeadlineAfter(300, TimeUnit.MILLISECONDS)
            .runJob(TestWorkers.request().build()));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(1));
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void stageTimeoutEndsTheJobAsTimedOut() throws Exception {
    var stub = start("worker.pipeline = [test-block]\nworker.stages.test-block.timeout = 300ms");
    JobResponse response = stub.runJob(TestWorkers.request().build());
    assertEquals(JobOutcome.JOB_OUTCOME_TIMED_OUT, response.getOutcome());
    assertEquals("worker.stage-timeout", response.getErrorCode());
    assertEquals("test-block", response.getFailedStage());
    assertTrue(response.getMessage().contains("worker.stages.test-block.timeout"),
        response.getMessage());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void jobTimeoutEndsTheJobAsTimedOut() throws Exception {
    var stub = start("worker.pipeline = [test-publish, test-block]\nworker.job-timeout = 400ms");
    JobResponse response = stub.runJob(TestWorkers.request().build());
    assertEquals(JobOutcome.JOB_OUTCOME_TIMED_OUT, response.getOutcome());
    assertEquals("worker.job-timeout", response.getErrorCode());
    assertTrue(response.getMessage().contains("worker.job-timeout"), response.getMessage());
  }

  @Test
  void twoSlotsRunTwoJobsAtOnce() throws Exception {
    start("worker.pipeline = [test-block]\nworker.max-concurrent-jobs = 2");
    var futures = JobServiceGrpc.newFutureStub(channel);
    var a = futures.runJob(TestWorkers.request().setJobId("a").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(2));
    var b = futures.runJob(TestWorkers.request().setJobId("b").build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    assertEquals(2, worker.jobs().runningJobIds().size());
    a.cancel(true);
    b.cancel(true);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    while (!worker.jobs().runningJobIds().isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertEquals(java.util.List.of(), worker.jobs().runningJobIds(), "both slots are free");
  }

  @Test
  void checkingTheConfigurationNextToARunningWorkerLeavesItsJobsAloneAndASecondWorkerIsRefused()
      throws Exception {
    start("worker.pipeline = [test-block]");
    JobServiceGrpc.newFutureStub(channel).runJob(TestWorkers.request().setJobId("kept").build());
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (TestWorkers.workspaceCount(dir) < 1 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    // What `worker check-config` does with the same configuration.
    try (Worker second = TestWorkers.prepare(dir, "worker.pipeline = [test-block]")) {
      assertEquals(1, TestWorkers.workspaceCount(dir), "the running job's workspace is kept");
      dev.slipway.worker.runtime.config.StartupException e = assertThrows(
          dev.slipway.worker.runtime.config.StartupException.class, second::start);
      assertTrue(e.getMessage().contains("in use by another worker"), e.getMessage());
    }
    assertEquals(WorkerStatus.WORKER_STATUS_BUSY, TestWorkers.ping(channel).getStatus());
  }
}

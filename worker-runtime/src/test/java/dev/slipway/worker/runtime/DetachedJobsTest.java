package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.GetJobRequest;
import dev.slipway.proto.v1.GetJobResponse;
import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.JobState;
import dev.slipway.proto.v1.WatchJobRequest;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SubmitJob, WatchJob and GetJob over real gRPC: a detached job outlives its submitter's
 * connection, watchers come and go with after_seq and miss nothing still kept, seq numbers are the
 * same in every stream, finished jobs are kept for the retention and then forgotten.
 */
class DetachedJobsTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws Exception {
    TestWorkers.close(worker, channel);
  }

  private void start(String hocon) throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block, test-publish]\n"
        + "worker.stages.test-block { duration = 1500ms, log-interval = 50ms }\n" + hocon);
    channel = TestWorkers.channel(worker);
  }

  private JobServiceGrpc.JobServiceBlockingStub stub(ManagedChannel c) {
    return JobServiceGrpc.newBlockingStub(c).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private List<JobEvent> watch(ManagedChannel c, String id, long afterSeq) {
    List<JobEvent> events = new ArrayList<>();
    stub(c).watchJob(WatchJobRequest.newBuilder().setJobId(id).setAfterSeq(afterSeq).build())
        .forEachRemaining(events::add);
    return events;
  }

  @Test
  void aDetachedJobOutlivesItsSubmitterAndWatchersMissNothing() throws Exception {
    start("");
    ManagedChannel submitter = TestWorkers.channel(worker);
    String id = stub(submitter).submitJob(TestWorkers.request().build()).getJobId();
    assertFalse(id.isEmpty());
    // The submitter goes away at once: the job goes on.
    submitter.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    Thread.sleep(300);
    GetJobResponse running = stub(channel).getJob(GetJobRequest.newBuilder().setJobId(id).build());
    assertEquals(JobState.JOB_STATE_RUNNING, running.getState(), running.toString());
    assertEquals("test-block", running.getCurrentStage());
    assertTrue(running.getLastSeq() > 0);

    // A watcher that comes back with the last seq it saw gets exactly what came after.
    long seen = running.getLastSeq();
    List<JobEvent> rest = watch(channel, id, seen);
    List<JobEvent> all = watch(channel, id, 0);
    assertEquals(seen + 1, rest.get(0).getSeq(), "resumes right after " + seen);
    assertTrue(all.get(all.size() - 1).hasResult(), "the result is the last event");
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED,
        all.get(all.size() - 1).getResult().getOutcome());
    for (int i = 0; i < all.size(); i++) {
      assertEquals(i + 1, all.get(i).getSeq(), "seq numbers are 1, 2, 3 ...");
    }
    assertEquals(all.subList((int) seen, all.size()), rest, "the same events, the same seqs");

    GetJobResponse finished = stub(channel).getJob(GetJobRequest.newBuilder().setJobId(id).build());
    assertEquals(JobState.JOB_STATE_FINISHED, finished.getState());
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, finished.getResult().getOutcome());
    assertEquals(all.size(), finished.getLastSeq());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void streamJobAndRunJobKeepTheirMeaningAndStreamJobEventsCarrySeq() throws Exception {
    start("");
    List<JobEvent> streamed = new ArrayList<>();
    stub(channel).streamJob(TestWorkers.request().setJobId("streamed-1").build())
        .forEachRemaining(streamed::add);
    for (int i = 0; i < streamed.size(); i++) {
      assertEquals(i + 1, streamed.get(i).getSeq());
    }
    // The finished streamed job is kept: watching it replays the very same events.
    assertEquals(streamed, watch(channel, "streamed-1", 0));
  }

  @Test
  void submitJobRefusesAsRunJobDoes() throws Exception {
    start("");
    StatusRuntimeException invalid = assertThrows(StatusRuntimeException.class,
        () -> stub(channel).submitJob(TestWorkers.request().setImageName("").build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, invalid.getStatus().getCode());
    String id = stub(channel).submitJob(TestWorkers.request().build()).getJobId();
    StatusRuntimeException busy = assertThrows(StatusRuntimeException.class,
        () -> stub(channel).submitJob(TestWorkers.request().build()));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, busy.getStatus().getCode());
    StatusRuntimeException duplicate = assertThrows(StatusRuntimeException.class,
        () -> stub(channel).runJob(TestWorkers.request().setJobId(id).build()));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, duplicate.getStatus().getCode(),
        "with one slot, busy comes first");
    watch(channel, id, 0);
    StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class,
        () -> stub(channel).getJob(GetJobRequest.newBuilder().setJobId("nope").build()));
    assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
  }

  @Test
  void finishedJobsAreForgottenAfterTheRetention() throws Exception {
    start("worker.jobs.retention = 500ms\n"
        + "worker.stages.test-block.duration = 100ms\n");
    String id = stub(channel).submitJob(TestWorkers.request().build()).getJobId();
    watch(channel, id, 0);
    assertEquals(JobState.JOB_STATE_FINISHED,
        stub(channel).getJob(GetJobRequest.newBuilder().setJobId(id).build()).getState());
    Thread.sleep(800);
    StatusRuntimeException gone = assertThrows(StatusRuntimeException.class,
        () -> stub(channel).getJob(GetJobRequest.newBuilder().setJobId(id).build()));
    assertEquals(Status.Code.NOT_FOUND, gone.getStatus().getCode());
    assertTrue(gone.getStatus().getDescription().contains("worker.jobs.retention"));
  }

  @Test
  void aWatcherOfEventsNoLongerKeptIsToldHowManyItMissed() throws Exception {
    start("worker.jobs.event-buffer.events = 5\n");
    String id = stub(channel).submitJob(TestWorkers.request().build()).getJobId();
    List<JobEvent> live = watch(channel, id, 0);
    List<JobEvent> replay = watch(channel, id, 0);
    assertEquals(6, replay.size(), "a notice and the five events kept: " + replay);
    assertEquals(0, replay.get(0).getSeq());
    assertTrue(replay.get(0).getLog().getLine().contains("no longer kept"), replay.toString());
    assertTrue(replay.get(5).hasResult());
    assertEquals(live.get(live.size() - 1), replay.get(5));
  }

  @Test
  void anotherCallersJobCannotBeWatchedOrRead() throws Exception {
    String a = "token-a-" + UUID.randomUUID();
    String b = "token-b-" + UUID.randomUUID();
    start("worker.callers = [\n"
        + "  { name = a, token-file = \"" + TlsClients.tokenFile(dir, "a", a)
        + "\", allowed-repositories = [\"**\"], allowed-push-repositories = [\"**\"] }\n"
        + "  { name = b, token-file = \"" + TlsClients.tokenFile(dir, "b", b)
        + "\", allowed-repositories = [\"**\"], allowed-push-repositories = [\"**\"] }\n"
        + "]\n");
    String id = stub(channel).withCallCredentials(TlsClients.bearer(a))
        .submitJob(TestWorkers.request().build()).getJobId();
    for (Runnable call : List.<Runnable>of(
        () -> stub(channel).withCallCredentials(TlsClients.bearer(b))
            .getJob(GetJobRequest.newBuilder().setJobId(id).build()),
        () -> stub(channel).withCallCredentials(TlsClients.bearer(b))
            .watchJob(WatchJobRequest.newBuilder().setJobId(id).build()).hasNext())) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
      assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    }
    assertEquals(JobState.JOB_STATE_RUNNING, stub(channel).withCallCredentials(TlsClients.bearer(a))
        .getJob(GetJobRequest.newBuilder().setJobId(id).build()).getState());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(10), a);
  }
}

package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.DeregisterRequest;
import dev.slipway.proto.v1.DeregisterResponse;
import dev.slipway.proto.v1.GetJobRequest;
import dev.slipway.proto.v1.HeartbeatRequest;
import dev.slipway.proto.v1.HeartbeatResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.JobState;
import dev.slipway.proto.v1.RegisterRequest;
import dev.slipway.proto.v1.RegisterResponse;
import dev.slipway.proto.v1.WorkerServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.registration.Registrar;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A fleet that heals itself, against an orchestrator on a real loopback socket: down at start,
 * restarted with empty state, told of a shutdown; heartbeats numbered within an instance.
 */
class FleetTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;
  Server orchestrator;

  @AfterEach
  void stop() throws Exception {
    TestWorkers.close(worker, channel);
    if (orchestrator != null) {
      orchestrator.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** An orchestrator that remembers workers in memory, and can forget them (a restart). */
  static final class Orchestrator extends WorkerServiceGrpc.WorkerServiceImplBase {
    final Map<String, String> known = new ConcurrentHashMap<>();
    final List<RegisterRequest> registrations = new CopyOnWriteArrayList<>();
    final List<HeartbeatRequest> heartbeats = new CopyOnWriteArrayList<>();
    final List<DeregisterRequest> deregistrations = new CopyOnWriteArrayList<>();

    @Override
    public void register(RegisterRequest request, StreamObserver<RegisterResponse> observer) {
      registrations.add(request);
      known.put(request.getWorkerId(), request.getInstanceId());
      observer.onNext(RegisterResponse.newBuilder().setAccepted(true).build());
      observer.onCompleted();
    }

    @Override
    public void heartbeat(HeartbeatRequest request, StreamObserver<HeartbeatResponse> observer) {
      heartbeats.add(request);
      observer.onNext(HeartbeatResponse.newBuilder()
          .setKnown(request.getInstanceId().equals(known.get(request.getWorkerId()))).build());
      observer.onCompleted();
    }

    @Override
    public void deregister(DeregisterRequest request,
        StreamObserver<DeregisterResponse> observer) {
      deregistrations.add(request);
      known.remove(request.getWorkerId());
      observer.onNext(DeregisterResponse.getDefaultInstance());
      observer.onCompleted();
    }
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private Server serve(int port, Orchestrator service) throws Exception {
    return Grpc.newServerBuilderForPort(port, InsecureServerCredentials.create())
        .addService(service).build().start();
  }

  private void startWorker(int orchestratorPort, String extra) throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.id = fleet-1\n"
        + "worker.stages.test-block { duration = 3s, log-interval = 100ms }\n"
        + "worker.orchestrator { address = \"127.0.0.1:" + orchestratorPort + "\","
        + " retry-initial-backoff = 50ms, retry-max-backoff = 200ms,"
        + " heartbeat-interval = 100ms, call-timeout = 2s }\n" + extra);
    channel = TestWorkers.channel(worker);
  }

  private static void await(String what, BooleanSupplier condition, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertTrue(condition.getAsBoolean(), what);
  }

  @Test
  void anOrchestratorThatIsDownAtStartIsRegisteredWithWhenItComesUp() throws Exception {
    int port = freePort();
    startWorker(port, "");
    // The worker serves meanwhile.
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
    Thread.sleep(400);
    assertEquals(Registrar.State.REGISTERING, worker.registrationState().orElseThrow());

    Orchestrator fake = new Orchestrator();
    orchestrator = serve(port, fake);
    await("registered once the orchestrator is up",
        () -> worker.registrationState().orElseThrow() == Registrar.State.REGISTERED,
        Duration.ofSeconds(10));
    RegisterRequest first = fake.registrations.get(0);
    assertEquals(worker.instanceId(), first.getInstanceId());
    await("heartbeats follow", () -> fake.heartbeats.size() >= 3, Duration.ofSeconds(5));
    for (int i = 0; i < 3; i++) {
      assertEquals(i + 1, fake.heartbeats.get(i).getSequence(), "numbered 1, 2, 3 ...");
      assertEquals(worker.instanceId(), fake.heartbeats.get(i).getInstanceId());
    }
  }

  @Test
  void anOrchestratorRestartedWithEmptyStateKnowsTheWorkerAgainWithItsRunningJob()
      throws Exception {
    int port = freePort();
    Orchestrator before = new Orchestrator();
    orchestrator = serve(port, before);
    startWorker(port, "");
    await("registered", () -> !before.registrations.isEmpty(), Duration.ofSeconds(10));
    String job = JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS)
        .submitJob(TestWorkers.request().build()).getJobId();

    // The orchestrator restarts and has lost every record.
    orchestrator.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    Orchestrator after = new Orchestrator();
    orchestrator = serve(port, after);
    await("known again", () -> after.known.containsKey("fleet-1"), Duration.ofSeconds(5));
    RegisterRequest again = after.registrations.get(0);
    assertEquals(List.of(job), again.getRunningJobIdsList(), "with its running job listed");
    assertEquals(worker.instanceId(), again.getInstanceId(), "the same instance");
    // The detached job was never touched by any of it.
    assertEquals(JobState.JOB_STATE_RUNNING, JobServiceGrpc.newBlockingStub(channel)
        .getJob(GetJobRequest.newBuilder().setJobId(job).build()).getState());
    await("heartbeats carry it", () -> after.heartbeats.stream()
        .anyMatch(h -> h.getRunningJobIdsList().contains(job)
            && h.getStatus() == WorkerStatus.WORKER_STATUS_BUSY), Duration.ofSeconds(5));
  }

  @Test
  void aStoppingWorkerDeregistersBeforeItDrains() throws Exception {
    int port = freePort();
    Orchestrator fake = new Orchestrator();
    orchestrator = serve(port, fake);
    startWorker(port, "worker.shutdown-grace-period = 5s\n");
    await("registered", () -> fake.known.containsKey("fleet-1"), Duration.ofSeconds(10));
    var job = JobServiceGrpc.newFutureStub(channel).runJob(TestWorkers.request().build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    Thread stopper = new Thread(worker::stop);
    stopper.start();
    await("deregistered at once, while the job still runs",
        () -> fake.deregistrations.size() == 1 && !job.isDone(), Duration.ofSeconds(2));
    assertEquals(worker.instanceId(), fake.deregistrations.get(0).getInstanceId());
    assertFalse(fake.deregistrations.get(0).getReason().isBlank());
    stopper.join(15_000);
    // The answer reaches the client a moment after the worker has stopped.
    assertEquals(dev.slipway.proto.v1.JobOutcome.JOB_OUTCOME_SUCCEEDED,
        job.get(10, TimeUnit.SECONDS).getOutcome(), "the job finished within the grace");
    int beats = fake.heartbeats.size();
    Thread.sleep(300);
    assertEquals(beats, fake.heartbeats.size(), "no heartbeat after deregistering");
    worker = null;
  }
}

package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.RegisterRequest;
import dev.slipway.proto.v1.RegisterResponse;
import dev.slipway.proto.v1.WorkerServiceGrpc;
import dev.slipway.worker.runtime.registration.Registrar;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Registration with an in-process fake orchestrator. */
class RegistrationTest {
  @TempDir Path dir;
  Worker worker;
  Server orchestrator;
  ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    if (worker != null) {
      worker.stop();
    }
    if (channel != null) {
      channel.shutdownNow();
    }
    if (orchestrator != null) {
      orchestrator.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** Refuses the first {@code refusals} calls, then accepts. */
  static final class FakeOrchestrator extends WorkerServiceGrpc.WorkerServiceImplBase {
    final List<RegisterRequest> calls = new CopyOnWriteArrayList<>();
    final int refusals;

    FakeOrchestrator(int refusals) {
      this.refusals = refusals;
    }

    @Override
    public void register(RegisterRequest request, StreamObserver<RegisterResponse> observer) {
      calls.add(request);
      boolean accept = calls.size() > refusals;
      observer.onNext(RegisterResponse.newBuilder().setAccepted(accept)
          .setMessage(accept ? "welcome" : "not yet").build());
      observer.onCompleted();
    }
  }

  @Test
  void refusedRegistrationIsRetriedUntilAcceptedWithEverythingTheOrchestratorNeeds()
      throws Exception {
    String name = InProcessServerBuilder.generateName();
    FakeOrchestrator fake = new FakeOrchestrator(2);
    orchestrator = InProcessServerBuilder.forName(name).addService(fake).build().start();
    channel = InProcessChannelBuilder.forName(name).build();

    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish, test-consume]\n"
            + "worker.id = w-7\nworker.region = eu-north-1\nworker.advertise-address = 10.9.8.7\n"
            + "worker.labels { arch = amd64, pool = fast }\n"
            + "worker.orchestrator { address = \"orchestrator.test:50051\","
            + " retry-initial-backoff = 20ms, retry-max-backoff = 80ms }",
        Map.of(), address -> channel);

    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (worker.registrationState().orElseThrow() != Registrar.State.REGISTERED
        && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertEquals(Registrar.State.REGISTERED, worker.registrationState().orElseThrow());
    assertEquals(3, fake.calls.size());
    RegisterRequest request = fake.calls.get(2);
    assertEquals("w-7", request.getWorkerId());
    assertEquals("10.9.8.7", request.getIp());
    assertEquals(worker.port(), request.getPort());
    assertEquals("eu-north-1", request.getRegion());
    assertEquals(Map.of("arch", "amd64", "pool", "fast"), request.getLabelsMap());
    assertEquals(List.of("test-publish", "test-consume"), request.getStagesList());
    assertTrue(!request.getVersion().isBlank());
  }

  @Test
  void unreachableOrchestratorIsRetriedWithoutStoppingTheWorker() throws Exception {
    // No server behind this name: every call fails with UNAVAILABLE.
    channel = InProcessChannelBuilder.forName(InProcessServerBuilder.generateName()).build();
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish]\n"
            + "worker.orchestrator { address = \"orchestrator.test:50051\","
            + " retry-initial-backoff = 10ms, retry-max-backoff = 40ms }",
        Map.of(), address -> channel);
    ManagedChannel client = TestWorkers.channel(worker);
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (worker.registrar().orElseThrow().attempts() < 4 && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertTrue(worker.registrar().orElseThrow().attempts() >= 4);
      assertEquals(Registrar.State.REGISTERING, worker.registrationState().orElseThrow());
      // The worker serves jobs meanwhile.
      assertTrue(TestWorkers.ping(client).getWorkerId().equals(worker.settings().id()));
    } finally {
      client.shutdownNow();
    }
  }

  @Test
  void noOrchestratorAddressMeansStandalone() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish]");
    assertEquals(Registrar.State.STANDALONE, worker.registrationState().orElseThrow());
  }
}

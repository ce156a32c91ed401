package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ping and health never wait behind job calls: with every thread that serves job calls held by
 * slow request checks, both still answer at once.
 */
class ProbesTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
  }

  @Test
  void pingAndHealthAnswerWhileEveryJobCallThreadIsBusy() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.stages.test-block { validate-duration = 3s, duration = 100ms }");
    channel = TestWorkers.channel(worker);
    var healthStub = HealthGrpc.newBlockingStub(channel);
    // Warm: the first call of each kind loads classes on both sides, which is not what is measured.
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .ping(dev.slipway.proto.v1.PingRequest.getDefaultInstance());
    healthStub.withDeadlineAfter(30, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance());
    // Eight job calls, each held three seconds in the stage's check: more than the server's
    // threads for job calls (4), so that any call queued behind them waits seconds.
    CountDownLatch answered = new CountDownLatch(8);
    var async = JobServiceGrpc.newStub(channel);
    for (int i = 0; i < 8; i++) {
      async.runJob(TestWorkers.request().setJobId("slow-" + i).build(), new StreamObserver<>() {
        @Override
        public void onNext(dev.slipway.proto.v1.JobResponse value) {}

        @Override
        public void onError(Throwable t) {
          answered.countDown();
        }

        @Override
        public void onCompleted() {
          answered.countDown();
        }
      });
    }
    Thread.sleep(500);

    long start = System.nanoTime();
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
    HealthCheckResponse health = healthStub.withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance());
    long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);

    assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.getStatus());
    // Generous for a loaded machine; behind the job calls it would be 3 s or more.
    assertTrue(tookMs < 1000, "Ping and health took " + tookMs + " ms");
    assertTrue(answered.getCount() > 0, "the job calls were still held while the probes ran");
    answered.await(60, TimeUnit.SECONDS);
  }
}

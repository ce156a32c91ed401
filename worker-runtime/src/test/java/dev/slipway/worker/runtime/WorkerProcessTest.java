package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The worker as operators run it: its own process, its exit codes, its signals. */
class WorkerProcessTest {
  private static final Pattern LISTENING = Pattern.compile("listening on [0-9.]+:(\\d+)");

  @TempDir Path dir;
  Process process;

  @AfterEach
  void kill() {
    if (process != null && process.isAlive()) {
      process.destroyForcibly();
    }
  }

  private Process launch(String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "--module-path", System.getProperty("jdk.module.path"),
        "--add-modules", "ALL-MODULE-PATH",
        "-cp", System.getProperty("java.class.path"),
        "-m", "dev.slipway.worker.runtime/dev.slipway.worker.runtime.Main"));
    command.addAll(List.of(args));
    return new ProcessBuilder(command).directory(dir.toFile())
        .redirectError(dir.resolve("stderr.txt").toFile())
        .redirectOutput(dir.resolve("stdout.txt").toFile())
        .start();
  }

  private String stderr() throws IOException {
    return Files.readString(dir.resolve("stderr.txt"), StandardCharsets.UTF_8);
  }

  private int awaitPort() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      Matcher m = LISTENING.matcher(stderr());
      if (m.find()) {
        return Integer.parseInt(m.group(1));
      }
      assertTrue(process.isAlive(), "worker exited early: " + stderr());
      Thread.sleep(50);
    }
    throw new AssertionError("worker did not start listening: " + stderr());
  }

  @Test
  void badConfigurationExitsWithCodeTwoAndNamesTheKey() throws Exception {
    Path conf = TestWorkers.config(dir, "worker.pipeline = [test-publish, nope]\n"
        + "worker.job-timeout = soon");
    process = launch("check-config", "--config", conf.toString());
    assertTrue(process.waitFor(60, TimeUnit.SECONDS));
    assertEquals(2, process.exitValue(), stderr());
    String err = stderr();
    assertTrue(err.contains("worker.job-timeout"), err);
    assertTrue(err.contains("worker.conf"), err);
  }

  @Test
  void checkConfigPrintsTheEffectivePipeline() throws Exception {
    Path conf = TestWorkers.config(dir, "worker.pipeline = [test-publish, test-consume]\n"
        + "worker.stages.test-publish.registry-password = \"sekrit-value\"");
    process = launch("check-config", "--config", conf.toString());
    assertTrue(process.waitFor(60, TimeUnit.SECONDS));
    String out = Files.readString(dir.resolve("stdout.txt"));
    assertEquals(0, process.exitValue(), stderr());
    assertTrue(out.contains("pipeline: test-publish -> test-consume"), out);
    assertTrue(!out.contains("sekrit-value") && out.contains("registry-password"), out);
  }

  @Test
  void servesHealthAndReflectionAndExitsZeroOnSigtermCancellingTheRunningJob()
      throws Exception {
    Path conf = TestWorkers.config(dir, "worker.pipeline = [test-block]\n"
        + "worker.shutdown-grace-period = 500ms");
    process = launch("--config", conf.toString());
    int port = awaitPort();
    ManagedChannel channel =
        NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    try {
      HealthCheckResponse health = HealthGrpc.newBlockingStub(channel)
          .withDeadlineAfter(5, TimeUnit.SECONDS)
          .check(HealthCheckRequest.newBuilder().setService("slipway.worker.v1.JobService")
              .build());
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.getStatus());
      assertTrue(reflectedServices(channel).contains("slipway.worker.v1.JobService"));

      var running = JobServiceGrpc.newFutureStub(channel)
          .runJob(TestWorkers.request().setJobId("during-sigterm").build());
      TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(10));

      process.destroy(); // SIGTERM

      JobResponse response = running.get(20, TimeUnit.SECONDS);
      assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, response.getOutcome());
      assertTrue(process.waitFor(30, TimeUnit.SECONDS), "worker did not exit");
      assertEquals(0, process.exitValue(), stderr());
      assertTrue(stderr().contains("Execution cancelled"), stderr());
      assertTrue(stderr().contains("job=during-sigterm"), "job lines carry the job id");
    } finally {
      channel.shutdownNow();
    }
  }

  private static List<String> reflectedServices(ManagedChannel channel) throws Exception {
    CompletableFuture<List<String>> names = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel)
        .serverReflectionInfo(new StreamObserver<>() {
          @Override
          public void onNext(ServerReflectionResponse value) {
            names.complete(value.getListServicesResponse().getServiceList().stream()
                .map(s -> s.getName()).toList());
          }

          @Override
          public void onError(Throwable t) {
            names.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {}
        });
    requests.onNext(ServerReflectionRequest.newBuilder().setListServices("*").build());
    List<String> result = names.get(5, TimeUnit.SECONDS);
    requests.onCompleted();
    return result;
  }
}

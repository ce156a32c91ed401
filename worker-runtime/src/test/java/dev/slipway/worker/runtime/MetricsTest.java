package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Prometheus metrics, scraped over HTTP as Prometheus would. */
class MetricsTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
  }

  private String scrape() throws IOException {
    HttpURLConnection c = (HttpURLConnection) new URL(
        "http://127.0.0.1:" + worker.metricsPort() + "/metrics").openConnection();
    assertEquals(200, c.getResponseCode());
    assertTrue(c.getContentType().startsWith("text/plain"), c.getContentType());
    try (InputStream in = c.getInputStream()) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  private static double value(String text, String series) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(text);
    assertTrue(m.find(), "no " + series + " in:\n" + text);
    return Double.parseDouble(m.group(1));
  }

  @Test
  void jobsStagesBusyRegistrationAndPluginsAreExposed() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish, test-block]\n"
        + "worker.stages.test-block.duration = 50ms\n"
        + "worker.metrics { enabled = true, bind-address = 127.0.0.1, port = 0 }");
    channel = TestWorkers.channel(worker);
    var stub = JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);

    stub.runJob(TestWorkers.request().build());
    stub.runJob(TestWorkers.request().build());

    String text = scrape();
    assertEquals(2, value(text, "slipway_jobs_total{caller=\"anonymous\",outcome=\"succeeded\"}"));
    assertEquals(2, value(text, "slipway_job_duration_seconds_count{outcome=\"succeeded\"}"));
    assertEquals(2, value(text,
        "slipway_stage_duration_seconds_count{result=\"ok\",stage=\"test-block\"}"));
    assertTrue(value(text, "slipway_job_duration_seconds_sum{outcome=\"succeeded\"}") >= 0.1);
    assertEquals(0, value(text, "slipway_worker_busy"));
    assertEquals(1, value(text, "slipway_registration_state{state=\"standalone\"}"));
    assertEquals(0, value(text, "slipway_registration_state{state=\"registered\"}"));
    assertTrue(value(text, "slipway_plugins") >= 5);

    // While a job runs, the worker is busy.
    worker.stop();
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.metrics { enabled = true, bind-address = 127.0.0.1, port = 0 }");
    channel.shutdownNow();
    channel = TestWorkers.channel(worker);
    var running = JobServiceGrpc.newFutureStub(channel).runJob(TestWorkers.request().build());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    text = scrape();
    assertEquals(1, value(text, "slipway_worker_busy"));
    assertEquals(1, value(text, "slipway_jobs_running"));
    running.cancel(true);
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(2));
    assertEquals(1, value(scrape(), "slipway_jobs_total{caller=\"anonymous\",outcome=\"cancelled\"}"));
  }

  @Test
  void metricsAreOffByDefault() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish]");
    assertEquals(false, worker.settings().metrics().enabled());
  }
}

package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigSyntax;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.runtime.logging.Logging;
import io.grpc.ManagedChannel;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** worker.log.format = json: one JSON object a line, and every line of a job has its job id. */
class JsonLogTest {
  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
    Logging.configure("text", "INFO");
  }

  @Test
  void everyLineIsAJsonObjectAndJobLinesCarryTheJobId() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Logging.configure("json", "INFO", out);
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish, test-consume]");
    channel = TestWorkers.channel(worker);
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .runJob(TestWorkers.request().setJobId("json-job").build());
    worker.stop();

    List<String> lines = out.toString(StandardCharsets.UTF_8).lines().toList();
    assertTrue(lines.size() > 5, lines.toString());
    List<Config> objects = lines.stream().map(line -> ConfigFactory.parseString(line,
        ConfigParseOptions.defaults().setSyntax(ConfigSyntax.JSON))).toList();
    for (Config o : objects) {
      assertTrue(o.hasPath("time") && o.hasPath("level") && o.hasPath("message"), o.toString());
    }
    List<Config> jobLines = objects.stream()
        .filter(o -> o.getString("logger").equals("dev.slipway.job")).toList();
    assertEquals(3, jobLines.size(), "the stages' lines, one of them from another thread");
    assertTrue(jobLines.stream().allMatch(o -> o.getString("job_id").equals("json-job")));
    assertTrue(objects.stream().anyMatch(o -> o.getString("message").contains("job finished")
        && o.getString("job_id").equals("json-job")));
    assertTrue(jobLines.stream().anyMatch(o -> o.getString("stage").equals("test-publish")
        && o.getString("message").equals("published from a helper thread")));
  }

  @Test
  void aSecretThatJsonEscapingWouldChangeIsStillMasked() throws Exception {
    String token = "tok\"en\\with-quote-and-backslash";
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Logging.configure("json", "INFO", out);
    worker = TestWorkers.start(dir, "worker.pipeline = [test-secret-log]");
    channel = TestWorkers.channel(worker);
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .runJob(TestWorkers.request().setGithubToken(token).build());
    worker.stop();
    String text = out.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("plain ****"), text);
    assertTrue(!text.contains("en\\\\with") && !text.contains(token), text);
  }
}

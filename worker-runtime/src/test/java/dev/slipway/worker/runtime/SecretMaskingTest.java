package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.runtime.logging.Logging;
import io.grpc.ManagedChannel;
import java.io.ByteArrayOutputStream;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A careless stage prints the job's token in every form it can; nothing the worker sends or logs
 * may carry it.
 */
class SecretMaskingTest {
  static final String TOKEN = "ghp_S3cretT0ken/with+odd=chars";

  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;
  final ByteArrayOutputStream logs = new ByteArrayOutputStream();

  @BeforeEach
  void captureLogs() {
    Logging.configure("text", "INFO", logs);
  }

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
    Logging.configure("text", "INFO");
  }

  private static List<String> forbidden() {
    return List.of(
        TOKEN,
        Base64.getEncoder().encodeToString(TOKEN.getBytes(StandardCharsets.UTF_8)),
        URLEncoder.encode(TOKEN, StandardCharsets.UTF_8),
        // The middle of the token, as base64 would show it inside "x-access-token:<token>".
        Base64.getEncoder().encodeToString(("x-access-token:" + TOKEN)
            .getBytes(StandardCharsets.UTF_8)).substring(24, 40));
  }

  private static void assertClean(String where, String text) {
    for (String secret : forbidden()) {
      assertFalse(text.contains(secret), where + " leaks '" + secret + "': " + text);
    }
  }

  @Test
  void tokenNeverReachesEventsResponsesOrLogs() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-secret-log]");
    channel = TestWorkers.channel(worker);

    List<JobEvent> events = new ArrayList<>();
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .streamJob(TestWorkers.request().setGithubToken(TOKEN).build())
        .forEachRemaining(events::add);

    List<String> lines = events.stream().filter(JobEvent::hasLog)
        .map(e -> e.getLog().getLine()).toList();
    assertEquals(4, lines.size(), lines.toString());
    assertTrue(lines.contains("split **** done"), lines.toString());
    assertTrue(lines.stream().allMatch(l -> l.contains("****")), lines.toString());
    assertClean("events", events.toString());
    assertClean("logs", logs.toString(StandardCharsets.UTF_8));
    assertTrue(logs.toString(StandardCharsets.UTF_8).contains("slf4j ****"),
        "the stage's own SLF4J line is logged, masked");
  }

  @Test
  void exceptionMessagesCarryingTheTokenAreMaskedInTheResponse() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-secret-log]\n"
        + "worker.stages.test-secret-log.fail-with-secret = true");
    channel = TestWorkers.channel(worker);

    JobResponse response = JobServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .runJob(TestWorkers.request().setGithubToken(TOKEN).build());

    assertFalse(response.getSuccess());
    assertTrue(response.getMessage().contains("bad token ****"), response.getMessage());
    assertClean("response", response.toString());
    assertClean("logs", logs.toString(StandardCharsets.UTF_8));
  }

  @Test
  void credentialsPublishedByAStageAreMaskedForTheStagesAfterIt() throws Exception {
    worker = TestWorkers.start(dir, "worker.pipeline = [test-publish, test-consume]\n"
        + "worker.stages.test-publish.registry-password = \"hunter2-registry-pass\"");
    channel = TestWorkers.channel(worker);

    List<JobEvent> events = new ArrayList<>();
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .streamJob(TestWorkers.request().build()).forEachRemaining(events::add);

    assertTrue(events.stream().anyMatch(e -> e.getLog().getLine()
        .equals("logging in as AWS with ****")), events.toString());
    assertFalse(events.toString().contains("hunter2-registry-pass"));
    assertFalse(logs.toString(StandardCharsets.UTF_8).contains("hunter2-registry-pass"));
  }

  @Test
  void aJobsSecretMasksOnlyThatJobsLines() throws Exception {
    // Job a's token is a word that job b prints: b's lines must stay readable.
    String word = "progress-ticket-4711";
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.max-concurrent-jobs = 2\n"
        + "worker.stages.test-block { duration = 1s, log-interval = 50ms,"
        + " log-line = \"at " + word + "\" }\n");
    channel = TestWorkers.channel(worker);
    var stub = JobServiceGrpc.newFutureStub(channel);
    var a = stub.runJob(TestWorkers.request().setJobId("job-a").setGithubToken(word).build());
    List<JobEvent> bEvents = new ArrayList<>();
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .streamJob(TestWorkers.request().setJobId("job-b").build())
        .forEachRemaining(bEvents::add);
    a.get(30, TimeUnit.SECONDS);
    String log = logs.toString(StandardCharsets.UTF_8);
    assertTrue(bEvents.stream().anyMatch(e -> e.hasLog()
        && e.getLog().getLine().equals("at " + word)), "b's own events are not masked");
    List<String> lines = log.lines().filter(l -> l.contains("dev.slipway.job")).toList();
    assertTrue(lines.stream().anyMatch(l -> l.contains("job=job-b") && l.endsWith("at " + word)),
        "b's log lines are not masked with a's token:\n" + log);
    assertTrue(lines.stream().filter(l -> l.contains("job=job-a"))
        .allMatch(l -> l.endsWith("at ****")), "a's lines are:\n" + log);
  }

  @Test
  void controlCharactersOfBuildOutputAreShownNotActedOn() throws Exception {
    String evil = "\u001b[2J\u001b]0;owned\u0007clear\rfake line\u009b31m";
    worker = TestWorkers.start(dir, "worker.pipeline = [test-block]\n"
        + "worker.stages.test-block { duration = 200ms, log-interval = 50ms,"
        + " log-line = \"" + evil.replace("\u001b", "\\u001b").replace("\u0007", "\\u0007")
            .replace("\r", "\\r").replace("\u009b", "\\u009b") + "\" }\n");
    channel = TestWorkers.channel(worker);
    JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .runJob(TestWorkers.request().build());
    String log = logs.toString(StandardCharsets.UTF_8);
    assertFalse(log.chars().anyMatch(c -> c == 0x1b || c == 0x07 || c == 0x9b || c == '\r'),
        "no control character reaches the text log");
    assertTrue(log.contains("\\x1b[2J\\x1b]0;owned\\x07clear"), log);
  }
}

package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.runtime.config.StartupException;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code stage_options} and {@code extra_tags} over real gRPC: checked at admission against what
 * the stages declare, each stage handed only its own, secret ones masked; and the runtime's check
 * of stage blocks against the plugins' {@code reference.conf}.
 */
class StageOptionsTest {
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

  /** The job's events, from StreamJob. */
  private static List<JobEvent> stream(JobServiceGrpc.JobServiceBlockingStub stub,
      JobRequest request) {
    List<JobEvent> events = new ArrayList<>();
    Iterator<JobEvent> it = stub.streamJob(request);
    it.forEachRemaining(events::add);
    return events;
  }

  private static List<String> lines(List<JobEvent> events, String stage) {
    return events.stream().filter(JobEvent::hasLog).map(JobEvent::getLog)
        .filter(l -> l.getStage().equals(stage)).map(l -> l.getLine()).toList();
  }

  @Test
  void eachStageIsHandedOnlyItsOwnOptionsWithoutThePrefix() throws Exception {
    var stub = start("worker.pipeline = [test-publish, test-options, test-consume]");

    List<JobEvent> events = stream(stub, TestWorkers.request()
        .putStageOptions("test-options.greeting", "hi")
        .putStageOptions("test-options.count", "3")
        .putStageOptions("test-options.loud", "true")
        .build());

    JobResponse result = events.get(events.size() - 1).getResult();
    assertTrue(result.getSuccess(), result.toString());
    List<String> own = lines(events, "test-options");
    assertTrue(own.contains("option greeting=hi"), own.toString());
    assertTrue(own.contains("option count=3"), own.toString());
    assertTrue(own.contains("option loud=true"), own.toString());
    assertTrue(own.contains("options handed: 3"), own.toString());
  }

  @Test
  void aJobWithoutOptionsHandsTheStageNone() throws Exception {
    var stub = start("worker.pipeline = [test-options]");
    List<JobEvent> events = stream(stub, TestWorkers.request().build());
    assertTrue(lines(events, "test-options").contains("options handed: 0"));
  }

  @Test
  void aSecretOptionIsHandedToItsStageAndMaskedEverywhere() throws Exception {
    var stub = start("worker.pipeline = [test-options]");
    String secret = "s3cr3t-option-value-42";

    List<JobEvent> events = stream(stub, TestWorkers.request()
        .putStageOptions("test-options.password", secret).build());

    assertTrue(events.get(events.size() - 1).getResult().getSuccess());
    List<String> own = lines(events, "test-options");
    assertTrue(own.stream().anyMatch(l -> l.startsWith("option password=") && !l.contains(secret)),
        own.toString());
    assertFalse(events.toString().contains(secret), "a secret option's value reached an event");
  }

  @ParameterizedTest(name = "{0}={1}")
  @CsvSource(delimiter = '|', value = {
      "nope.greeting|hi|no stage 'nope' in this worker's pipeline [test-options, test-publish]",
      "test-publish.x|1|stage 'test-publish' has no option 'x'; it has none",
      "test-options.colour|red|it has [test-options.greeting, test-options.count,"
          + " test-options.loud, test-options.password]",
      "greeting|hi|is not '<stage>.<option>', e.g. 'test-options.greeting'",
      "test-options.|hi|is not '<stage>.<option>'",
      "test-options.count|11|'11' is not a whole number from 1 to 10",
      "test-options.count|two|'two' is not a whole number from 1 to 10",
      "test-options.loud|yes|'yes' is not true or false",
      "test-options.greeting|Hello|'Hello' is not 1-16 lower case letters",
      "test-options.greeting|refuse|greeting 'refuse' is refused by the stage (test.refused)",
  })
  void wrongOptionsAreRefusedAtAdmissionNamingWhatIsKnown(String key, String value,
      String expected) throws Exception {
    var stub = start("worker.pipeline = [test-options, test-publish]");

    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(TestWorkers.request().putStageOptions(key, value).build()));

    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains(expected), e.getStatus().getDescription());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  @Test
  void aWrongSecretOptionIsRefusedWithoutQuotingIt() throws Exception {
    var stub = start("worker.pipeline = [test-options]");
    String secret = "line-one\nline-two-secret";
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(TestWorkers.request()
            .putStageOptions("test-options.password", secret).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("control character"));
    assertFalse(e.getStatus().getDescription().contains("line-two-secret"));
  }

  @Test
  void extraTagsComeBackAsExtraImageUrisInOrder() throws Exception {
    var stub = start("worker.pipeline = [test-push]\n"
        + "worker.stages.test-push.registry = \"registry.test:5000\"");

    JobResponse response = stub.runJob(TestWorkers.request()
        .addExtraTags("main").addExtraTags("3f2a9c1").build());

    assertTrue(response.getSuccess(), response.toString());
    assertEquals(List.of("registry.test:5000/acme/app:main", "registry.test:5000/acme/app:3f2a9c1"),
        response.getExtraImageUrisList());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "-main|'-main' is not a tag",
      "a b|'a b' is not a tag",
      "main:2|'main:2' is not a tag",
  })
  void malformedExtraTagsAreRefusedAtAdmission(String tag, String expected) throws Exception {
    var stub = start("worker.pipeline = [test-push]");
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(TestWorkers.request().addExtraTags(tag).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains(expected), e.getStatus().getDescription());
  }

  @Test
  void repeatedAndTooManyExtraTagsAreRefused() throws Exception {
    var stub = start("worker.pipeline = [test-push]");
    StatusRuntimeException twice = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(TestWorkers.request().addExtraTags("a").addExtraTags("a").build()));
    assertTrue(twice.getStatus().getDescription().contains("'a' is given twice"));
    JobRequest.Builder many = TestWorkers.request();
    for (int i = 0; i < 17; i++) {
      many.addExtraTags("t" + i);
    }
    StatusRuntimeException tooMany = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(many.build()));
    assertTrue(tooMany.getStatus().getDescription().contains("at most 16"));
  }

  @Test
  void extraTagsOnAPipelineThatPushesNothingAreRefused() throws Exception {
    var stub = start("worker.pipeline = [test-publish]");
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(TestWorkers.request().addExtraTags("main").build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("no stage of this worker's pipeline"
        + " [test-publish] pushes the image"), e.getStatus().getDescription());
  }

  @Test
  void unknownKeysOfAStageBlockStopStartUpAllAtOnce() {
    StartupException e = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-options, test-publish]\n"
            + "worker.stages.test-options { tiemout = 1m, nested.unknwn = 2, nested.known = 3,"
            + " labels.anything = x, timeout = 2m }\n"
            + "worker.stages.test-publish.comit-sha = abc"));
    String message = e.getMessage();
    assertTrue(message.contains("worker.stages.test-options.tiemout: unknown key"), message);
    assertTrue(message.contains("knows [labels, nested, timeout]"), message);
    assertTrue(message.contains("worker.stages.test-options.nested.unknwn: unknown key"), message);
    assertTrue(message.contains("worker.stages.test-publish.comit-sha: unknown key"), message);
    assertFalse(message.contains("labels.anything"), message);
    assertFalse(message.contains("nested.known"), message);
    assertFalse(message.contains(".timeout"), message);
  }

  @Test
  void workerPluginsListsDescriptionsOptionsAndErrorCodes() throws Exception {
    StringWriter text = new StringWriter();
    PrintWriter out = new PrintWriter(text);
    for (var stage : dev.slipway.worker.runtime.plugins.PluginRegistry.discover().all()) {
      if (stage.id().equals("test-options")) {
        dev.slipway.worker.runtime.cli.WorkerCli.describe(out, stage);
      }
    }
    out.flush();
    String listing = text.toString();
    assertTrue(listing.contains("test-options: Logs the per-job options it is handed"), listing);
    assertTrue(listing.contains("test-options.count"), listing);
    assertTrue(listing.contains("a whole number from 1 to 10; default: 1"), listing);
    assertTrue(listing.contains("test-options.password"), listing);
    assertTrue(listing.contains("; secret"), listing);
    assertTrue(listing.contains("test.refused"), listing);
    assertTrue(listing.contains("invalid_request"), listing);
  }
}

package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.ErrorKind;
import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A stage compiled against the previous {@code worker-api} (0.1, when {@code JobRequestView} was
 * a record; kept as {@code compat/slipway-worker-api-0.1.jar}) runs on this runtime unchanged:
 * it reads every request field 0.1 had, publishes and requires outputs, refuses a request, fails
 * with a code, all through a real worker over gRPC. A change of the SPI that breaks plugins built
 * against 0.1 (a removed or retyped accessor, a record turned interface) fails here with a
 * {@code LinkageError} in the job.
 */
class SpiCompatibilityTest {
  @TempDir static Path build;
  static Path legacyPlugin;

  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;

  @BeforeAll
  static void compileAgainstTheOldApi() throws Exception {
    Path oldApi = build.resolve("slipway-worker-api-0.1.jar");
    try (InputStream in = SpiCompatibilityTest.class.getResourceAsStream(
        "/compat/slipway-worker-api-0.1.jar")) {
      Files.copy(in != null ? in : Files.newInputStream(
          Path.of("src/test/resources/compat/slipway-worker-api-0.1.jar")), oldApi);
    }
    try (ZipFile jar = new ZipFile(oldApi.toFile())) {
      // The jar must be the old SPI: one without the classes 0.3 added.
      assertTrue(jar.getEntry("dev/slipway/worker/api/StageOption.class") == null);
      assertTrue(jar.getEntry("dev/slipway/worker/api/JobRequestView.class") != null);
    }
    Path src = build.resolve("src");
    Path classes = build.resolve("classes");
    write(src.resolve("module-info.java"), "module com.example.legacy {\n"
        + "  requires dev.slipway.worker.api;\n"
        + "  provides dev.slipway.worker.api.StageFactory with"
        + " com.example.legacy.LegacyStageFactory;\n}\n");
    write(src.resolve("com/example/legacy/LegacyStageFactory.java"), """
        package com.example.legacy;

        import com.typesafe.config.Config;
        import dev.slipway.worker.api.*;
        import java.util.Set;

        public final class LegacyStageFactory implements StageFactory {
          public String id() { return "legacy"; }
          public Set<StageKey<?>> requires() { return Set.of(StageKeys.COMMIT_SHA); }
          public Set<StageKey<?>> produces() { return Set.of(StageKeys.IMAGE_URI); }
          public Stage create(Config config, WorkerEnvironment env) {
            String prefix = config.getString("prefix");
            return new Stage() {
              public void validate(JobRequestView r) throws StageException {
                if (r.imageName().contains("refuse")) {
                  throw new StageException("legacy.refused", ErrorKind.INVALID_REQUEST,
                      "the legacy stage refuses " + r.imageName());
                }
              }
              public void execute(JobContext c) throws StageException {
                JobRequestView r = c.request();
                c.log().line("request " + r.jobId() + " " + r.repoUrl() + " branch=" + r.branch()
                    + " token=" + r.token().isPresent() + " image=" + r.imageName()
                    + " dockerfile=" + r.dockerfilePath() + " context=" + r.contextDir()
                    + " args=" + r.buildArgs());
                c.log().line("commit " + c.require(StageKeys.COMMIT_SHA));
                if ("1".equals(r.buildArgs().get("FAIL"))) {
                  throw new StageException("legacy.failed", ErrorKind.EXTERNAL, "asked to fail");
                }
                c.publish(StageKeys.IMAGE_URI, prefix + "/" + r.imageName());
              }
            };
          }
        }
        """);
    write(classes.resolve("reference.conf"), "worker.stages.legacy {\n  timeout = 1m\n"
        + "  prefix = \"legacy.example\"\n}\n");
    run(List.of(tool("javac"), "--release", "17", "-d", classes.toString(),
        "--module-path", oldApi + ":" + jarOf("typesafe.config"),
        src.resolve("module-info.java").toString(),
        src.resolve("com/example/legacy/LegacyStageFactory.java").toString()));
    legacyPlugin = build.resolve("com.example.legacy-1.0.jar");
    run(List.of(tool("jar"), "--create", "--file", legacyPlugin.toString(), "--module-version",
        "1.0", "-C", classes.toString(), "."));
  }

  @AfterEach
  void stop() throws InterruptedException {
    TestWorkers.close(worker, channel);
  }

  private JobServiceGrpc.JobServiceBlockingStub start() throws Exception {
    Path home = dir.resolve("home");
    Files.createDirectories(home.resolve("plugins/legacy"));
    Files.copy(legacyPlugin, home.resolve("plugins/legacy/" + legacyPlugin.getFileName()));
    WorkerOptions options = new WorkerOptions(Optional.of(TestWorkers.config(dir,
        "worker.pipeline = [test-publish, legacy]")), dir, Environment.of(Map.of()),
        new Properties(), home);
    worker = Worker.prepare(options, PluginRegistry.discover(options.pluginsDir()), null);
    worker.start();
    channel = TestWorkers.channel(worker);
    return JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  @Test
  void aStageBuiltAgainstTheOldApiReadsTheRequestAndPublishes() throws Exception {
    var stub = start();
    List<String> lines = new ArrayList<>();
    List<JobEvent> events = new ArrayList<>();
    stub.streamJob(TestWorkers.request().setJobId("old-1").setBranch("main")
        .setGithubToken("t0ken-for-the-legacy-stage").putBuildArgs("A", "1")
        // A field 0.1 never knew of reaches the new runtime without troubling the old stage.
        .setCommitSha("0123456789abcdef0123456789abcdef01234567")
        .build()).forEachRemaining(events::add);
    events.stream().filter(JobEvent::hasLog).forEach(e -> lines.add(e.getLog().getLine()));

    JobResponse result = events.get(events.size() - 1).getResult();
    assertTrue(result.getSuccess(), result + "\n" + lines);
    assertTrue(lines.contains("request old-1 https://git.example.test/acme/app.git branch=main"
        + " token=true image=acme/app:1.0 dockerfile=Dockerfile context=. args={A=1}"),
        lines.toString());
    assertTrue(lines.contains("commit 0123456789abcdef0123456789abcdef01234567"), lines.toString());
    assertEquals("legacy.example/acme/app:1.0", result.getImageUri());
  }

  @Test
  void anOldStagesFailureAndRefusalKeepTheirCodesAndKinds() throws Exception {
    var stub = start();

    JobResponse failed = stub.runJob(TestWorkers.request().putBuildArgs("FAIL", "1").build());
    assertEquals("legacy.failed", failed.getErrorCode());
    assertEquals(ErrorKind.ERROR_KIND_EXTERNAL, failed.getErrorKind());
    assertEquals("legacy", failed.getFailedStage());

    StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
        () -> stub.runJob(TestWorkers.request().setImageName("acme/refuse:1").build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, refused.getStatus().getCode());
    assertTrue(refused.getStatus().getDescription()
        .contains("the legacy stage refuses acme/refuse:1 (legacy.refused)"));
  }

  private static void write(Path file, String text) throws Exception {
    Files.createDirectories(file.getParent());
    Files.writeString(file, text);
  }

  private static Path jarOf(String module) {
    return ModuleLayer.boot().configuration().findModule(module)
        .flatMap(m -> m.reference().location()).map(Path::of).orElseThrow();
  }

  private static String tool(String name) {
    return Path.of(System.getProperty("java.home"), "bin", name).toString();
  }

  private static void run(List<String> command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, command + ":\n" + out);
  }
}

package dev.slipway.worker.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.Environment;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code worker submit | ping | cancel} against a real worker on loopback. */
class ClientCommandsTest {
  @TempDir Path dir;
  Worker worker;
  final StringWriter out = new StringWriter();
  final StringWriter err = new StringWriter();

  @AfterEach
  void stop() {
    if (worker != null) {
      worker.stop();
    }
  }

  private void start(String pipeline) throws Exception {
    Path conf = dir.resolve("w.conf");
    Files.writeString(conf, "worker.bind-address = 127.0.0.1\nworker.port = 0\nworker.id = cli-w\n"
        + "worker.workspace-root = \"" + dir.resolve("ws") + "\"\n" + pipeline);
    worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, Environment.of(Map.of()),
        new Properties(), dir));
    worker.start();
  }

  private int run(String... args) {
    return WorkerCli.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
  }

  @Test
  void submitFollowsTheJobAndPrintsTheImage() throws Exception {
    start("worker.pipeline = [test-publish, test-consume]");
    int code = run("submit", "--target", "127.0.0.1:" + worker.port(), "--repo",
        "https://git.example.test/a.git", "--image", "acme/app:2", "--plain");
    String text = out.toString();
    assertEquals(0, code, text + err);
    assertTrue(text.contains("> test-publish"), text);
    assertTrue(text.contains("[test-consume] logging in as AWS with ****"), text);
    assertTrue(text.contains("image:  registry.test:5000/acme/app:2"), text);
    assertTrue(text.contains("digest: sha256:0123456789abcdef"), text);
  }

  @Test
  void submitExitsNonZeroWhenTheJobFails() throws Exception {
    start("worker.pipeline = [test-fail]");
    int code = run("submit", "-t", "127.0.0.1:" + worker.port(), "--repo",
        "https://git.example.test/a.git", "--image", "acme/app:2", "--plain");
    assertEquals(ClientCommands.EXIT_JOB_FAILED, code);
    assertTrue(out.toString().contains("failed in stage test-fail (test.failed)"), out.toString());
  }

  @Test
  void submitReportsARefusedRequest() throws Exception {
    start("worker.pipeline = [test-publish]");
    int code = run("submit", "-t", "127.0.0.1:" + worker.port(), "--repo", "",
        "--image", "acme/app:2");
    assertEquals(ClientCommands.EXIT_UNREACHABLE, code);
    assertTrue(err.toString().contains("INVALID_ARGUMENT") && err.toString().contains("repo_url"),
        err.toString());
  }

  @Test
  void pingAndCancel() throws Exception {
    start("worker.pipeline = [test-publish]");
    assertEquals(0, run("ping", "-t", "127.0.0.1:" + worker.port()));
    assertTrue(out.toString().contains("cli-w FREE"), out.toString());
    assertEquals(ClientCommands.EXIT_JOB_FAILED, run("cancel", "-t", "127.0.0.1:" + worker.port(),
        "no-such-job"));
  }

  @Test
  void onATerminalTheLogLineUpdatesInPlace() {
    StringWriter text = new StringWriter();
    ClientCommands.ProgressPrinter printer =
        new ClientCommands.ProgressPrinter(new PrintWriter(text), true);
    printer.stageStarted("j1", "git");
    printer.log("git", "Receiving objects: 10%");
    printer.log("git", "Receiving objects: 90%");
    printer.stageFinished(dev.slipway.proto.v1.StageResult.newBuilder().setStage("git")
        .setSuccess(true).setDurationMs(12).build());
    assertEquals("> git  (job j1)\n"
        + "\r\033[2K  | Receiving objects: 10%"
        + "\r\033[2K  | Receiving objects: 90%"
        + "\r\033[2K  ok   git (12 ms)\n", text.toString().replace(System.lineSeparator(), "\n"));
  }

  @Test
  void unreachableWorkerIsSaidSo() {
    assertEquals(ClientCommands.EXIT_UNREACHABLE, run("ping", "-t", "127.0.0.1:1"));
    assertTrue(err.toString().contains("UNAVAILABLE"), err.toString());
  }
}

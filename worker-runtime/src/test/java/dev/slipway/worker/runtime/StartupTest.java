package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.config.StartupException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Start-up validates everything and reports every problem at once. */
class StartupTest {
  @TempDir Path dir;

  @Test
  void unknownStageIsReportedWithTheDiscoveredIds() {
    StartupException e = assertThrows(StartupException.class,
        () -> TestWorkers.prepare(dir, "worker.pipeline = [test-publish, gti]"));
    assertEquals(1, e.problems().size(), e.getMessage());
    String problem = e.problems().get(0);
    assertTrue(problem.contains("'gti'"), problem);
    assertTrue(problem.contains("test-block") && problem.contains("test-publish"), problem);
  }

  @Test
  void badValueNamesTheKeyAndTheFileItCameFrom() {
    StartupException e = assertThrows(StartupException.class,
        () -> TestWorkers.prepare(dir, "worker.pipeline = [test-publish]\nworker.port = lots"));
    String message = e.getMessage();
    assertTrue(message.contains("worker.port"), message);
    assertTrue(message.contains("worker.conf"), message);
  }

  @Test
  void everyProblemIsReportedAtOnce() {
    StartupException e = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-publish]\n"
            + "worker.max-concurrent-jobs = 0\n"
            + "worker.orchestrator.address = \"no port here\"\n"
            + "worker.prot = 1\n"
            + "worker.log.format = xml"));
    List<String> problems = e.problems();
    assertEquals(4, problems.size(), String.join("\n", problems));
    assertTrue(problems.stream().anyMatch(p -> p.contains("worker.max-concurrent-jobs")));
    assertTrue(problems.stream().anyMatch(p -> p.contains("worker.orchestrator.address")));
    assertTrue(problems.stream().anyMatch(p -> p.contains("worker.prot is not a known setting")));
    assertTrue(problems.stream().anyMatch(p -> p.contains("worker.log.format")));
  }

  @Test
  void workerProblemsAndStageProblemsComeTogether() {
    StartupException e = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-fail, nope]\nworker.port = -1\n"
            + "worker.stages.test-fail.code = nodot"));
    String all = String.join("\n", e.problems());
    assertTrue(all.contains("worker.port"), all);
    assertTrue(all.contains("'nope'"), all);
    assertTrue(all.contains("worker.stages.test-fail: code: 'nodot'"), all);
  }

  @Test
  void nestedTyposAreErrors() {
    StartupException e = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-publish]\nworker.metrics.enable = true\n"
            + "worker.orchestrator.adress = \"x:1\""));
    String all = String.join("\n", e.problems());
    assertTrue(all.contains("worker.metrics.enable is not a known setting"), all);
    assertTrue(all.contains("worker.orchestrator.adress is not a known setting"), all);
  }

  @Test
  void originalEnvironmentVariablesAreHonoured() throws Exception {
    Path conf = TestWorkers.config(dir, "worker.pipeline = [test-publish]");
    Worker worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, Environment.of(Map.of(
        "WORKER_ID", "from-env", "ORCHESTRATOR_ADDR", "orch.example.test:7000",
        "AWS_REGION", "eu-west-1")), new Properties(), dir));
    try {
      assertEquals("from-env", worker.settings().id());
      assertEquals(Optional.of("orch.example.test:7000"),
          worker.settings().orchestrator().address());
      assertEquals(Optional.of("eu-west-1"), worker.settings().region());
    } finally {
      worker.close();
    }
  }

  @Test
  void workerIdIsGeneratedAndTheDefaultsMatchTheOriginalWorker() throws Exception {
    Path conf = dir.resolve("minimal.conf");
    Files.writeString(conf, "worker.pipeline = [test-publish]\n");
    // Secure by default: the default bind address serves other hosts, so without TLS or
    // callers the worker does not start.
    StartupException refused = assertThrows(StartupException.class, () -> Worker.prepare(
        new WorkerOptions(Optional.of(conf), dir, Environment.of(Map.of()), new Properties(),
            dir)));
    assertTrue(refused.getMessage().contains("worker.insecure = true"), refused.getMessage());
    Files.writeString(conf, "worker.pipeline = [test-publish]\nworker.insecure = true\n");
    Worker worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir,
        Environment.of(Map.of()), new Properties(), dir));
    try {
      assertTrue(worker.settings().id().startsWith("worker-"), worker.settings().id());
      assertEquals("0.0.0.0", worker.settings().bindAddress());
      assertEquals(50052, worker.settings().port());
      assertEquals(dir.resolve("tmp/repos"), worker.settings().workspaceRoot());
      assertEquals(1, worker.settings().maxConcurrentJobs());
      assertEquals(Optional.empty(), worker.settings().orchestrator().address());
    } finally {
      worker.close();
    }
  }

  @Test
  void dotEnvFileIsReadAndTheRealEnvironmentWins() throws Exception {
    Files.writeString(dir.resolve(".env"),
        "SLIPWAY_TEST_ONLY_VALUE=from-dotenv\nPATH=/from/dotenv\n");
    Environment env = Environment.load(dir);
    assertEquals(Optional.of("from-dotenv"), env.get("SLIPWAY_TEST_ONLY_VALUE"));
    assertEquals(Optional.ofNullable(System.getenv("PATH")), env.get("PATH"));
  }

  @Test
  void dotEnvVariablesFeedSubstitutionsInTheConfig() throws Exception {
    Files.writeString(dir.resolve(".env"), "SLIPWAY_TEST_SHA=feedface\n");
    Path conf = TestWorkers.config(dir, "worker.pipeline = [test-publish]\n"
        + "worker.stages.test-publish.commit-sha = ${?SLIPWAY_TEST_SHA}");
    Worker worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir,
        Environment.load(dir), new Properties(), dir));
    try {
      assertTrue(worker.renderEffectiveConfig().contains("feedface"));
    } finally {
      worker.close();
    }
  }

  @Test
  void effectiveConfigMasksSecrets() throws Exception {
    Worker worker = TestWorkers.prepare(dir, "worker.pipeline = [test-publish]\n"
        + "worker.stages.test-publish.registry-password = \"very-secret-value\"");
    try {
      String rendered = worker.renderEffectiveConfig();
      assertTrue(rendered.contains("registry-password"), rendered);
      assertTrue(!rendered.contains("very-secret-value"), rendered);
    } finally {
      worker.close();
    }
  }
}

package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.runtime.config.StartupException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Start-up problems that name the bundled plugins' stages; the rest of start-up's checks are
 * worker-runtime's StartupTest.
 */
class StartupTest {
  @TempDir Path dir;

  @Test
  void stageConfigurationProblemsAndPipelineProblemsComeTogether() {
    StartupException e = assertThrows(StartupException.class, () -> TestWorkers.prepare(dir,
        "worker.pipeline = [test-consume, test-fail]\n"
            + "worker.stages.test-fail.code = nodot\n"
            + "worker.stages.tset-block.timeout = 1s"));
    List<String> problems = e.problems();
    String all = String.join("\n", problems);
    assertTrue(all.contains("worker.stages.test-fail: code: 'nodot'"), all);
    assertTrue(all.contains("stage 'test-consume' needs 'commit-sha', which no stage before it"
        + " in worker.pipeline [test-consume, test-fail] produces; stages that produce it: [git,"
        + " test-publish]"), all);
    assertTrue(all.contains("worker.stages.tset-block configures a stage no plugin provides"),
        all);
  }
}

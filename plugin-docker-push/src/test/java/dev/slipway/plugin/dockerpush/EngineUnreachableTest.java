package dev.slipway.plugin.dockerpush;

import static dev.slipway.plugin.dockerpush.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real docker-java client against an engine that is not there: no Docker needed. */
class EngineUnreachableTest {
  @TempDir Path tmp;

  @Test
  void anEngineThatIsNotThereIsReportedAtOnceAndCleanupStillWorks() throws Exception {
    String socket = tmp.resolve("no-engine.sock").toString();
    try (Stage stage = new DockerPushStageFactory().create(
        Fixtures.config(map("docker-host", "unix://" + socket, "registry", "127.0.0.1:5000")), Fixtures.worker(Map.of()))) {
      var job = Fixtures.job("team/app:1", "team/app:1", tmp);
      long start = System.nanoTime();
      StageException e = assertThrows(StageException.class, () -> stage.execute(job));
      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertEquals("push.engine-unreachable", e.code());
      assertEquals(ErrorKind.EXTERNAL, e.kind());
      assertTrue(e.getMessage().contains("unix://" + socket + " cannot be reached"), e.getMessage());
      assertTrue(millis < 5000, millis + " ms");
      stage.cleanup(job);
    }
  }
}

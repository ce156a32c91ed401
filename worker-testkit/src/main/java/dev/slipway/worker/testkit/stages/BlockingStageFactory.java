package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.WorkerEnvironment;
import java.nio.file.Files;
import java.time.Duration;

/**
 * {@code test-block}: writes a file into the workspace, then waits until the job is cancelled (or
 * for {@code duration} when set), logging a line every {@code log-interval}.
 */
public final class BlockingStageFactory implements StageFactory {
  @Override
  public String id() {
    return "test-block";
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) {
    Duration duration = config.getDuration("duration");
    Duration interval = config.getDuration("log-interval");
    String line = config.getString("log-line");
    return context -> block(context, duration, interval, line);
  }

  private static void block(JobContext context, Duration duration, Duration interval,
      String line) throws InterruptedException {
    try {
      Files.writeString(context.workspace().resolve("partial-work.txt"), "in progress");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    long end = System.nanoTime() + duration.toNanos();
    while (System.nanoTime() < end) {
      context.log().line(line);
      Thread.sleep(interval.toMillis());
    }
  }
}

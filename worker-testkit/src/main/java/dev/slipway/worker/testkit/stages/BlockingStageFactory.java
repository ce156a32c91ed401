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
 * for {@code duration} when set), logging a line every {@code log-interval}. Its check of a
 * request takes {@code validate-duration} (0 by default), as a stage asking a slow service would.
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
    Duration validation = config.getDuration("validate-duration");
    return new Stage() {
      @Override
      public void validate(dev.slipway.worker.api.JobRequestView request) {
        try {
          Thread.sleep(validation.toMillis());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }

      @Override
      public void execute(JobContext context) throws InterruptedException {
        block(context, duration, interval, line);
      }
    };
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

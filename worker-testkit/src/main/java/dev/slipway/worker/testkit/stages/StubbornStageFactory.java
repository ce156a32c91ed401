package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.WorkerEnvironment;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

/**
 * {@code test-stubborn}: a stage that will not stop, as a buggy plugin would. With
 * {@code ignore-interrupts} it keeps running when interrupted, for {@code duration}; with
 * {@code child-process} it starts {@code sleep} and waits for it, reporting it to the runtime but
 * never killing it; with {@code hang-cleanup} its cleanup never returns (until {@code duration}).
 */
public final class StubbornStageFactory implements StageFactory {
  @Override
  public String id() {
    return "test-stubborn";
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) {
    boolean ignoreInterrupts = config.getBoolean("ignore-interrupts");
    boolean childProcess = config.getBoolean("child-process");
    boolean hangCleanup = config.getBoolean("hang-cleanup");
    Duration duration = config.getDuration("duration");
    return new Stage() {
      @Override
      public void execute(JobContext context) throws InterruptedException {
        context.log().line("stubborn stage running");
        if (childProcess) {
          try {
            Process p = new ProcessBuilder("sleep", String.valueOf(duration.toSeconds()))
                .redirectErrorStream(true).start();
            context.processStarted(p.toHandle());
            context.log().line("started child " + p.pid());
            waitIgnoringInterrupts(p);
            return;
          } catch (IOException e) {
            throw new IllegalStateException(e);
          }
        }
        if (!ignoreInterrupts) {
          Thread.sleep(duration.toMillis());
          return;
        }
        sleepIgnoringInterrupts(duration);
      }

      @Override
      public void cleanup(JobContext context) {
        if (hangCleanup) {
          sleepIgnoringInterrupts(duration);
        }
      }
    };
  }

  private static void waitIgnoringInterrupts(Process p) {
    while (p.isAlive()) {
      try {
        p.waitFor();
      } catch (InterruptedException e) {
        // Ignored on purpose: this stage will not stop when asked.
      }
    }
  }

  static void sleepIgnoringInterrupts(Duration duration) {
    long end = System.nanoTime() + duration.toNanos();
    CountDownLatch never = new CountDownLatch(1);
    while (System.nanoTime() < end) {
      try {
        never.await(Math.min(100, (end - System.nanoTime()) / 1_000_000 + 1),
            java.util.concurrent.TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        // Ignored on purpose.
      }
    }
  }
}

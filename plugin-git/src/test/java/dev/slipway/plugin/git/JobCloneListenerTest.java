package dev.slipway.plugin.git;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Progress lines and cancellation, without a clone. */
class JobCloneListenerTest {
  private final RecordingJobContext ctx =
      new RecordingJobContext(RecordingJobContext.request("https://h/r.git", "", null, "a"), Path.of("."));

  @Test
  void logsAtMostOneLinePerIntervalAndSkipsUntitledTasks() {
    JobCloneListener listener = new JobCloneListener(ctx, Duration.ofHours(1), Thread.currentThread());

    listener.progress("", 0, 0);
    listener.progress("Receiving objects", 1, 1000);
    for (int i = 2; i <= 1000; i++) {
      listener.progress("Receiving objects", i, 1000);
    }
    listener.progress("Resolving deltas", 5, 10);

    assertEquals(List.of("Receiving objects:   0% (1/1000)"), ctx.lines());
  }

  @Test
  void formatsLikeGit() {
    assertEquals("Receiving objects:  45% (450/1000)", JobCloneListener.format("Receiving objects", 450, 1000));
    assertEquals("Counting objects: 1200", JobCloneListener.format("Counting objects", 1200, 0));
    assertEquals("Checking out files: 100% (3/3)", JobCloneListener.format("Checking out files", 3, 3));
  }

  @Test
  void cancelledByTheJobOrByAnInterrupt() throws Exception {
    JobCloneListener listener = new JobCloneListener(ctx, Duration.ofSeconds(1), Thread.currentThread());
    AtomicInteger aborts = new AtomicInteger();
    listener.onCancel(aborts::incrementAndGet);
    assertFalse(listener.isCancelled());

    Thread.currentThread().interrupt();
    assertTrue(listener.isCancelled());
    assertTrue(Thread.interrupted(), "asking must not clear the interrupt");

    ctx.cancel();
    assertTrue(listener.isCancelled());
    assertEquals(1, aborts.get());
  }
}

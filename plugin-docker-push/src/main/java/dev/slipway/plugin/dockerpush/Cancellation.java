package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobContext;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One job's cancellation as the stage sees it: aborts the running push, ends a wait for a name's
 * lock or for a retry. Made per job in {@code execute}, registered with {@link JobContext#onCancel}.
 */
final class Cancellation {
  private final JobContext context;
  private final CountDownLatch cancelled = new CountDownLatch(1);
  private final AtomicReference<ImageEngine.RunningPush> current = new AtomicReference<>();

  private Cancellation(JobContext context) {
    this.context = context;
  }

  /** The cancellation of {@code context}'s job, registered with it. */
  static Cancellation of(JobContext context) {
    Cancellation cancellation = new Cancellation(context);
    context.onCancel(cancellation::cancel);
    return cancellation;
  }

  void cancel() {
    cancelled.countDown();
    ImageEngine.RunningPush push = current.get();
    if (push != null) {
      push.abort();
    }
  }

  /** The push that a cancel must abort now, or null when none runs. */
  void running(ImageEngine.RunningPush push) {
    current.set(push);
    if (push != null && cancelled()) {
      push.abort();
    }
  }

  /** Whether the stage's own cancel action ran. */
  boolean cancelled() {
    return cancelled.getCount() == 0;
  }

  /** Whether the job is cancelled, as the stage's action or the context says. */
  boolean isCancelled() {
    return cancelled() || context.isCancelled();
  }

  /**
   * Waits before attempt {@code attempt + 1}, saying so in the job's log.
   *
   * @param why what failed, for the log line
   * @throws InterruptedException when the job is cancelled meanwhile
   */
  void awaitRetry(int attempt, DockerPushSettings.Retry retry, String why) throws InterruptedException {
    Duration wait = retry.backoffBefore(attempt + 1);
    context.log().line(
        "attempt " + attempt + " of " + retry.maxAttempts() + ": " + why + "; retrying in " + seconds(wait.toNanos()));
    if (cancelled.await(wait.toNanos(), TimeUnit.NANOSECONDS) || context.isCancelled()) {
      throw new InterruptedException("cancelled while waiting to retry");
    }
  }

  /** {@code nanos} as the job's log shows a time: {@code 0.13 s}. */
  static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.2f s", nanos / 1e9);
  }
}

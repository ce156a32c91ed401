package dev.slipway.plugin.git;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.StageException;
import java.time.Duration;

/**
 * Connects a clone to its job: progress becomes at most one log line per {@code
 * progress-interval} (JGit reports every object, thousands a second), and the clone stops when
 * the job is cancelled or the stage's thread is interrupted.
 */
final class JobCloneListener implements CloneListener {
  private final JobContext context;
  private final long intervalNanos;
  private final Thread worker;
  private boolean logged;
  private long lastLine;

  /**
   * @param worker the thread that runs the clone, whose interruption also stops it
   */
  JobCloneListener(JobContext context, Duration interval, Thread worker) {
    this.context = context;
    this.intervalNanos = interval.toNanos();
    this.worker = worker;
  }

  @Override
  public synchronized void progress(String task, long done, long total) {
    if (task.isBlank()) {
      return; // JGit opens an untitled task first; it says nothing.
    }
    long now = System.nanoTime();
    if (logged && now - lastLine < intervalNanos) {
      return;
    }
    logged = true;
    lastLine = now;
    context.log().line(format(task, done, total));
  }

  @Override
  public void log(String line) {
    context.log().line(line);
  }

  @Override
  public boolean isCancelled() {
    return context.isCancelled() || worker.isInterrupted();
  }

  @Override
  public void onCancel(Runnable abort) {
    context.onCancel(abort);
  }

  @Override
  public boolean recordLeftover(String what) {
    try {
      context.recordLeftover(what);
      return true;
    } catch (StageException | IllegalArgumentException e) {
      return false;
    }
  }

  /** In git's own words: {@code Receiving objects:  45% (450/1000)}. */
  static String format(String task, long done, long total) {
    if (total <= 0) {
      return task + ": " + done;
    }
    long percent = Math.min(100, done * 100 / total);
    return String.format("%s: %3d%% (%d/%d)", task, percent, done, total);
  }
}

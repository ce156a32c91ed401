package dev.slipway.plugin.git.jgit;

import dev.slipway.plugin.git.CloneListener;
import java.util.function.BooleanSupplier;
import org.eclipse.jgit.lib.ProgressMonitor;

/**
 * JGit's progress callbacks, handed to a {@link CloneListener}; JGit polls {@link #isCancelled}
 * between objects and between files, which is how a transfer or checkout in progress stops: when
 * the job is cancelled, or when the clone passed its size limit.
 *
 * <p>Implements the interface directly: JGit's {@code BatchingProgressMonitor} would schedule its
 * updates on a shared background thread.
 */
final class ListenerProgressMonitor implements ProgressMonitor {
  private final CloneListener listener;
  private final BooleanSupplier stop;
  private String task = "";
  private long done;
  private long total;

  /**
   * @param stop whether the clone must stop for a reason of its own, such as its size limit
   */
  ListenerProgressMonitor(CloneListener listener, BooleanSupplier stop) {
    this.listener = listener;
    this.stop = stop;
  }

  @Override
  public void start(int totalTasks) {}

  @Override
  public synchronized void beginTask(String title, int totalWork) {
    task = title;
    done = 0;
    total = totalWork == UNKNOWN ? 0 : totalWork;
    listener.progress(task, done, total);
  }

  @Override
  public synchronized void update(int completed) {
    done += completed;
    listener.progress(task, done, total);
  }

  @Override
  public void endTask() {}

  @Override
  public boolean isCancelled() {
    return stop.getAsBoolean() || listener.isCancelled();
  }

  @Override
  public void showDuration(boolean enabled) {}
}

package dev.slipway.plugin.git.jgit;

import dev.slipway.plugin.git.CloneListener;
import org.eclipse.jgit.lib.ProgressMonitor;

/**
 * JGit's progress callbacks, handed to a {@link CloneListener}; JGit polls {@link #isCancelled}
 * between objects, which is how a transfer in progress stops.
 *
 * <p>Implements the interface directly: JGit's {@code BatchingProgressMonitor} would schedule its
 * updates on a shared background thread.
 */
final class ListenerProgressMonitor implements ProgressMonitor {
  private final CloneListener listener;
  private String task = "";
  private long done;
  private long total;

  ListenerProgressMonitor(CloneListener listener) {
    this.listener = listener;
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
    return listener.isCancelled();
  }

  @Override
  public void showDuration(boolean enabled) {}
}

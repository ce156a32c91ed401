package dev.slipway.plugin.dockerpush;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * One lock per local image name ({@code registry/repository:tag}), shared by every job of this
 * process, so that only one job at a time points a destination name at its own image: {@code
 * docker push} pushes a local name, so the name must exist while the push runs. The holder tags,
 * pushes, puts the name back and checks the registry's digest before it lets go, so two jobs that
 * push the same {@code image_name} at once each push their own image and see their own digest.
 *
 * <p>A lock is not tied to a thread (a {@link Semaphore}, not a {@code ReentrantLock}): a job whose
 * name could not be put back keeps it until its {@code cleanup}. Entries go away with their last
 * user. Other processes on the same engine are not covered: give each worker its own engine (as
 * the Kubernetes manifests do, one engine per pod).
 */
final class LocalNameLocks {
  /** The locks of this process. */
  static final LocalNameLocks PROCESS = new LocalNameLocks();

  private static final long POLL_MILLIS = 50;

  private final Map<String, Entry> entries = new HashMap<>();

  private static final class Entry {
    final Semaphore permit = new Semaphore(1);
    int users;
  }

  /** A lock that is held, until {@link #release}. */
  final class Held {
    private final String name;
    private final Entry entry;
    private final AtomicBoolean released = new AtomicBoolean();

    private Held(String name, Entry entry) {
      this.name = name;
      this.entry = entry;
    }

    /** Lets the next job have the name. Safe to call more than once, from any thread. */
    void release() {
      if (released.compareAndSet(false, true)) {
        entry.permit.release();
        leave(name, entry);
      }
    }

    @Override
    public String toString() {
      return "lock on " + name + (released.get() ? " (released)" : "");
    }
  }

  /**
   * Waits until no other job of this process holds {@code name}, and takes it.
   *
   * @param cancelled polled while waiting; when it turns true the wait ends
   * @param onWait runs once if the name is taken, before waiting
   * @throws InterruptedException when the thread is interrupted or {@code cancelled} turns true
   */
  Held acquire(String name, BooleanSupplier cancelled, Runnable onWait) throws InterruptedException {
    Entry entry;
    synchronized (entries) {
      entry = entries.computeIfAbsent(name, n -> new Entry());
      entry.users++;
    }
    boolean acquired = false;
    try {
      if (!entry.permit.tryAcquire()) {
        onWait.run();
        while (!entry.permit.tryAcquire(POLL_MILLIS, TimeUnit.MILLISECONDS)) {
          if (cancelled.getAsBoolean()) {
            throw new InterruptedException("cancelled while waiting for another job's push of " + name);
          }
        }
      }
      acquired = true;
      return new Held(name, entry);
    } finally {
      if (!acquired) {
        leave(name, entry);
      }
    }
  }

  /** How many names have a lock entry now (held or waited for); for tests. */
  int size() {
    synchronized (entries) {
      return entries.size();
    }
  }

  private void leave(String name, Entry entry) {
    synchronized (entries) {
      if (--entry.users == 0) {
        entries.remove(name, entry);
      }
    }
  }
}

package dev.slipway.plugin.git.jgit;

import dev.slipway.plugin.git.CloneFailure;
import dev.slipway.plugin.git.CloneFailure.Reason;
import dev.slipway.plugin.git.Sizes;
import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One clone's size limit, {@code max-checkout-size}, enforced while the clone runs rather than
 * after it. Three checks share it:
 *
 * <ul>
 *   <li>{@link #received} counts every byte read from the git server's answers (the connections
 *       of {@link GuardedConnectionFactory} call it); the read that passes the limit fails.
 *   <li>{@link #checkPlanned} runs between fetch and checkout with the sizes of the files about
 *       to be written, so that a small pack that would expand into huge files (zeros compress
 *       well) is refused before the first of them is written. JGit writes a file in one go and
 *       cannot be stopped inside one; this is what bounds a single file.
 *   <li>A watcher thread walks the checkout directory every {@link #WATCH_INTERVAL} (less often
 *       when a walk is slow) and trips the limit when what is on disk passes it, whatever wrote it:
 *       line-ending conversion, index files, a pack the server compressed on top. {@link
 *       #checkDisk} does the same walk once more when the clone is done.
 * </ul>
 *
 * <p>Tripping runs the {@link #onExceeded} actions once (the clone closes its sockets, as on
 * cancellation), and from then on {@link #exceeded()} is true, which JGit's progress monitor
 * reports as cancellation, so that it stops at its next object or file. The partial checkout stays
 * where it is: the runtime deletes the workspace after every job.
 *
 * <p>Sizes are file lengths (symbolic links count their target's length), not disk blocks.
 */
final class SizeLimit implements AutoCloseable {
  /** How often the watcher walks the checkout, at most. */
  static final Duration WATCH_INTERVAL = Duration.ofMillis(100);

  /** The watcher threads' name prefix; tests look for leftovers by it. */
  static final String THREAD_PREFIX = "git-checkout-size-";

  private static final AtomicInteger THREADS = new AtomicInteger();
  /** Longest {@link #close} waits for the watcher, which stops at its next file. */
  private static final long JOIN_MILLIS = 2_000;

  private final long maxBytes;
  private final Path directory;
  private final AtomicLong received = new AtomicLong();
  private final AtomicLong copied = new AtomicLong();
  private final AtomicReference<Tripped> tripped = new AtomicReference<>();
  private final List<Runnable> onExceeded = new CopyOnWriteArrayList<>();
  private volatile boolean closed;
  private Thread watcher;

  /** What passed the limit, and when that was seen. */
  record Tripped(String detail, long atNanos) {}

  /**
   * @param maxBytes the limit, more than 0
   * @param directory the checkout's root, which need not exist yet
   */
  SizeLimit(long maxBytes, Path directory) {
    if (maxBytes <= 0) {
      throw new IllegalArgumentException("maxBytes must be more than 0: " + maxBytes);
    }
    this.maxBytes = maxBytes;
    this.directory = directory;
  }

  long maxBytes() {
    return maxBytes;
  }

  /** Runs {@code action} once when the limit trips; at once if it already has. */
  void onExceeded(Runnable action) {
    onExceeded.add(action);
    if (tripped.get() != null) {
      action.run();
    }
  }

  /** Whether the limit has tripped; the clone must stop. */
  boolean exceeded() {
    return tripped.get() != null;
  }

  /** What tripped the limit, or null. */
  Tripped tripped() {
    return tripped.get();
  }

  /** The failure to report for a clone the limit stopped; call only once {@link #exceeded()}. */
  CloneFailure failure(Throwable cause) {
    Tripped t = tripped.get();
    return new CloneFailure(
        Reason.TOO_LARGE, t == null ? "the clone passed the limit" : t.detail(), cause);
  }

  /**
   * Counts {@code bytes} more received from a server.
   *
   * @throws TooLargeException when the clone has now received more than the limit, or the limit
   *     had tripped already
   */
  void received(long bytes) throws TooLargeException {
    if (bytes > 0 && received.addAndGet(bytes) > maxBytes) {
      trip("the server sent more than " + Sizes.format(maxBytes));
    }
    throwIfExceeded();
  }

  /**
   * Counts {@code bytes} more that the clone copies into the checkout from the worker's mirror:
   * the local stand-in for bytes received, held to the same limit.
   *
   * @throws TooLargeException when the checkout now holds more than the limit
   */
  void copied(long bytes) throws TooLargeException {
    if (bytes > 0 && copied.addAndGet(bytes) > maxBytes) {
      trip("the objects of the checkout, copied from the worker's mirror, take more than "
          + Sizes.format(maxBytes));
    }
    throwIfExceeded();
  }

  /**
   * Starts counting received and copied bytes afresh, for a clone that starts over (a damaged
   * mirror rebuilt from the server) with an empty checkout. A limit that tripped stays tripped.
   */
  void restart() {
    received.set(0);
    copied.set(0);
  }

  /**
   * Refuses a checkout whose files would take the clone past the limit, before any is written.
   *
   * @param files bytes the checkout will write; counting them may stop once past {@link
   *     #maxBytes()}
   * @param commit the commit checked out, for the message
   */
  void checkPlanned(long files, String commit) throws TooLargeException {
    long onDisk = usage(Long.MAX_VALUE, false);
    if (onDisk + files > maxBytes) {
      trip(
          "the files of commit "
              + commit.substring(0, Math.min(12, commit.length()))
              + " take "
              + (files > maxBytes ? "more than " + Sizes.format(maxBytes) : Sizes.format(files))
              + " on top of "
              + Sizes.format(onDisk)
              + " already in the checkout");
    }
    throwIfExceeded();
  }

  /** Walks the checkout now and trips the limit when it is over. */
  void checkDisk() throws TooLargeException {
    if (usage(maxBytes, false) > maxBytes) {
      trip("the checkout grew past " + Sizes.format(maxBytes));
    }
    throwIfExceeded();
  }

  private void throwIfExceeded() throws TooLargeException {
    Tripped t = tripped.get();
    if (t != null) {
      throw new TooLargeException(t);
    }
  }

  /** Starts the watcher thread; {@link #close} stops it. */
  synchronized void startWatching(Duration interval) {
    if (watcher != null || closed) {
      return;
    }
    long intervalNanos = interval.toNanos();
    watcher = new Thread(() -> watch(intervalNanos), THREAD_PREFIX + THREADS.incrementAndGet());
    watcher.setDaemon(true);
    watcher.start();
  }

  private void watch(long intervalNanos) {
    try {
      while (!closed && !exceeded()) {
        long start = System.nanoTime();
        if (usage(maxBytes, true) > maxBytes && !closed) {
          trip("the checkout grew past " + Sizes.format(maxBytes));
          return;
        }
        // A walk of a huge checkout is slow: wait at least as long, so the watcher never takes
        // more than about half of a core away from the clone.
        long waitNanos = Math.max(intervalNanos, System.nanoTime() - start);
        Thread.sleep(waitNanos / 1_000_000, (int) (waitNanos % 1_000_000));
      }
    } catch (InterruptedException e) {
      // close() stops the watcher this way.
    }
  }

  /** Stops the watcher and waits (briefly) until it has: no thread outlives the clone. */
  @Override
  public void close() {
    Thread w;
    synchronized (this) {
      closed = true;
      w = watcher;
    }
    if (w == null) {
      return;
    }
    w.interrupt();
    boolean interrupted = false;
    long deadline = System.nanoTime() + JOIN_MILLIS * 1_000_000;
    while (w.isAlive()) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        break;
      }
      try {
        w.join(Math.max(1, left / 1_000_000));
      } catch (InterruptedException e) {
        interrupted = true; // Kept for the caller, whose interrupt this is.
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  /** Records the first trip and runs the actions; later trips keep the first reason. */
  private void trip(String detail) {
    if (tripped.compareAndSet(null, new Tripped(detail, System.nanoTime()))) {
      for (Runnable action : onExceeded) {
        try {
          action.run();
        } catch (RuntimeException e) {
          // An action that fails must not keep the others from running.
        }
      }
    }
  }

  /**
   * The bytes under the checkout, counting stopped once past {@code stopAbove} (or, for the
   * watcher, once closed). Files come and go while JGit works (temporary files are renamed), so
   * ones that vanish mid-walk are skipped. Symbolic links are not followed.
   */
  long usage(long stopAbove, boolean stopWhenClosed) {
    if (!Files.isDirectory(directory)) {
      return 0;
    }
    long[] total = {0};
    try {
      Files.walkFileTree(
          directory,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
              if (stopWhenClosed && closed) {
                return FileVisitResult.TERMINATE;
              }
              if (attrs.isRegularFile() || attrs.isSymbolicLink()) {
                total[0] += attrs.size();
              }
              return total[0] > stopAbove ? FileVisitResult.TERMINATE : FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) {
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException e) {
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (NoSuchFileException e) {
      // The directory itself went away: nothing is there.
    } catch (IOException e) {
      // The visitor swallows per-file failures; what is left is the root itself failing.
    }
    return total[0];
  }

  /**
   * The limit stopped the clone. An {@link IOException}, so that JGit passes it on as the cause
   * of its own failure, as it does with a failed read.
   */
  static final class TooLargeException extends IOException {
    private static final long serialVersionUID = 1L;

    /** When the limit was seen to be passed ({@link System#nanoTime()}). */
    final long trippedAtNanos;

    TooLargeException(Tripped tripped) {
      super(tripped.detail());
      this.trippedAtNanos = tripped.atNanos();
    }
  }
}

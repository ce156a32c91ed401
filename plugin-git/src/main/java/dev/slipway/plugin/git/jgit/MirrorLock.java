package dev.slipway.plugin.git.jgit;

import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * One mirror held by one job: a lock of this JVM, then a lock of the file, so that two stage
 * instances of one worker and two workers on one host sharing the cache directory are kept apart.
 *
 * <p>Both are needed: a {@link FileLock} is held by the whole JVM (a second thread trying it gets
 * {@link OverlappingFileLockException}, not a wait), and a JVM lock does not reach other
 * processes. The JVM's locks are kept per lock file for the JVM's lifetime, whichever stage made
 * them. Waiting polls, so that a cancelled job stops waiting within a few tens of milliseconds.
 */
final class MirrorLock implements AutoCloseable {
  // Semaphores, not ReentrantLocks: a lock may be released by another thread than took it.
  private static final ConcurrentHashMap<Path, Semaphore> LOCAL = new ConcurrentHashMap<>();
  private static final long POLL_MILLIS = 25;

  private final Semaphore local;
  private final FileChannel channel;
  private final FileLock lock;
  private final AtomicBoolean closed = new AtomicBoolean();

  private MirrorLock(Semaphore local, FileChannel channel, FileLock lock) {
    this.local = local;
    this.channel = channel;
    this.lock = lock;
  }

  /**
   * Waits until the mirror of {@code file} is free and takes it.
   *
   * @param file the mirror's lock file, an absolute, normalised path; created when missing
   * @param timeoutNanos longest wait
   * @param cancelled whether the job was cancelled meanwhile
   * @return the lock, or null when it stayed taken for {@code timeoutNanos}
   * @throws InterruptedException when the job was cancelled, or the thread interrupted, while
   *     waiting
   */
  static MirrorLock acquire(Path file, long timeoutNanos, BooleanSupplier cancelled)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeoutNanos;
    Semaphore local = LOCAL.computeIfAbsent(file, f -> new Semaphore(1));
    while (!local.tryAcquire(POLL_MILLIS, TimeUnit.MILLISECONDS)) {
      if (cancelled.getAsBoolean()) {
        throw new InterruptedException("the job was cancelled while waiting for the mirror");
      }
      if (System.nanoTime() - deadline > 0) {
        return null;
      }
    }
    FileChannel channel = null;
    try {
      channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      while (true) {
        FileLock lock = channel.tryLock();
        if (lock != null) {
          return new MirrorLock(local, channel, lock);
        }
        if (cancelled.getAsBoolean()) {
          throw new InterruptedException("the job was cancelled while waiting for the mirror");
        }
        if (System.nanoTime() - deadline > 0) {
          channel.close();
          local.release();
          return null;
        }
        Thread.sleep(POLL_MILLIS);
      }
    } catch (IOException | InterruptedException | RuntimeException e) {
      closeQuietly(channel);
      local.release();
      if (e instanceof ClosedByInterruptException) {
        // A thread interrupted inside tryLock: the channel closed itself.
        throw new InterruptedException("interrupted while waiting for the mirror");
      }
      throw e;
    }
  }

  /**
   * Takes the mirror of {@code file} if nobody holds it, without waiting.
   *
   * @return the lock, or null when a job (of this JVM or another process) holds it
   */
  static MirrorLock tryAcquire(Path file) throws IOException {
    Semaphore local = LOCAL.computeIfAbsent(file, f -> new Semaphore(1));
    if (!local.tryAcquire()) {
      return null;
    }
    FileChannel channel = null;
    try {
      channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      FileLock lock;
      try {
        lock = channel.tryLock();
      } catch (OverlappingFileLockException e) {
        lock = null;
      }
      if (lock == null) {
        channel.close();
        local.release();
        return null;
      }
      return new MirrorLock(local, channel, lock);
    } catch (IOException | RuntimeException e) {
      closeQuietly(channel);
      local.release();
      throw e;
    }
  }

  /** Releases both locks; once, however often it is called. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    try {
      lock.release();
    } catch (IOException e) {
      // Closing the channel releases it too.
    }
    closeQuietly(channel);
    local.release();
  }

  private static void closeQuietly(FileChannel channel) {
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException e) {
        // Nothing left to release.
      }
    }
  }
}

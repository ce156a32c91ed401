package dev.slipway.plugin.git;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * The mirror cache's configuration, the block {@code worker.stages.git.cache}: a bare repository
 * per repository URL and credential, which repeat clones are checked out from.
 *
 * @param enabled whether clones go through the cache (a job may opt out with {@code git.cache})
 * @param dir where the mirrors live, absolute; never inside a job's workspace
 * @param maxSize most bytes all mirrors together may take; least recently used ones go first
 * @param lockTimeout longest a job waits for a mirror another job is updating before it clones
 *     without the cache
 * @param readyCheckouts whether a checkout of the commit each job got is made ahead, in the
 *     background, for the next job for the same branch or ref and depth
 */
public record CacheSettings(
    boolean enabled, Path dir, long maxSize, Duration lockTimeout, boolean readyCheckouts) {
  public CacheSettings {
    Objects.requireNonNull(dir, "dir");
    Objects.requireNonNull(lockTimeout, "lockTimeout");
    if (!dir.isAbsolute()) {
      throw new IllegalArgumentException("dir must be absolute: " + dir);
    }
    if (maxSize <= 0) {
      throw new IllegalArgumentException("maxSize must be more than 0: " + maxSize);
    }
  }

  /** With ready checkouts. */
  public CacheSettings(boolean enabled, Path dir, long maxSize, Duration lockTimeout) {
    this(enabled, dir, maxSize, lockTimeout, true);
  }
}

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
 */
public record CacheSettings(boolean enabled, Path dir, long maxSize, Duration lockTimeout) {
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

  /** No cache: every clone goes to the server alone. */
  public static CacheSettings disabled(Path dir) {
    return new CacheSettings(false, dir, Long.MAX_VALUE, Duration.ofMinutes(5));
  }
}

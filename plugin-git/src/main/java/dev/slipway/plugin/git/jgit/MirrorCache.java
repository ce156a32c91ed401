package dev.slipway.plugin.git.jgit;

import dev.slipway.plugin.git.CacheSettings;
import dev.slipway.plugin.git.Sizes;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jgit.lib.RepositoryCache;
import org.eclipse.jgit.util.FS;

/**
 * The mirrors on disk: where each one is, who holds it, and which go when the cache is too big.
 *
 * <pre>
 * DIR/mirrors/KEY.git   a bare repository, complete: only a finished mirror is ever renamed here
 * DIR/locks/KEY.lock    its lock file ({@link MirrorLock}); kept, since a waiter may hold it open
 * DIR/tmp/KEY.RANDOM    a mirror being built, renamed into mirrors/ once its first fetch is done
 * DIR/ready/KEY/...     checkouts made ahead from the mirror of KEY ({@link ReadyCheckouts})
 * DIR/trash/...         mirrors being removed: renamed here first, so none is ever half there
 * DIR/evict.lock        held by the one process that evicts at a time
 * </pre>
 *
 * <p>KEY is the sha-256 of the normalised URL, a NUL and the sha-256 of the job's token (of the
 * empty string without one): each credential has its own mirror, so a job never gets objects that
 * only another token fetched. The token itself is never written; a mirror's {@code config} holds
 * the URL only, and {@code slipway-mirror} says which URL a mirror is of, for people.
 */
final class MirrorCache {
  /** The record a job makes before it builds a mirror; the path follows. */
  static final String LEFTOVER = "git-mirror-tmp ";
  /** A mirror's last use: this file's modification time. */
  static final String USED = "slipway-used";
  /** What a mirror is of, for people: its URL and whether a token fetched it. */
  static final String ABOUT = "slipway-mirror";

  /** Ready checkouts are made in tmp/ under this prefix. */
  private static final String READY_TEMP = "ready-";
  /** A ready checkout still being made after this long was abandoned by a crashed worker. */
  private static final long READY_TEMP_MAX_AGE_MILLIS = 3_600_000;
  private static final Pattern TEMP_NAME = Pattern.compile("([0-9a-f]{64})\\.[0-9a-f]{16}");
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Path root;
  private final Path mirrors;
  private final Path locks;
  private final Path tmp;
  private final Path trash;
  private final Path ready;
  private final long maxSize;
  private final long lockTimeoutNanos;

  /**
   * Opens the cache at {@code settings.dir()}, making its directories, and removes what crashed
   * jobs left in it that no job holds.
   *
   * @throws IOException when the directory cannot be made or written
   */
  MirrorCache(CacheSettings settings) throws IOException {
    if (!Files.exists(settings.dir())) {
      // The mirrors hold the repositories' sources, as the workspaces do: the worker's user only.
      Files.createDirectories(settings.dir());
      try {
        Files.setPosixFilePermissions(settings.dir(), PosixFilePermissions.fromString("rwx------"));
      } catch (UnsupportedOperationException e) {
        // Not a POSIX file system: its own defaults hold.
      }
    }
    this.root = settings.dir().toRealPath();
    this.mirrors = Files.createDirectories(root.resolve("mirrors"));
    this.locks = Files.createDirectories(root.resolve("locks"));
    this.tmp = Files.createDirectories(root.resolve("tmp"));
    this.trash = Files.createDirectories(root.resolve("trash"));
    this.ready = Files.createDirectories(root.resolve("ready"));
    this.maxSize = settings.maxSize();
    this.lockTimeoutNanos = settings.lockTimeout().toNanos();
    Files.delete(Files.createTempFile(tmp, "probe-", ".tmp")); // writable, or start-up fails
    sweep(s -> {});
  }

  Path root() {
    return root;
  }

  long maxSize() {
    return maxSize;
  }

  /** The key of {@code url}'s mirror for {@code token}: 64 hex digits. */
  static String key(URI url, Optional<String> token) {
    String credential = sha256(token.orElse(""));
    return sha256(normalise(url) + "\0" + credential);
  }

  /**
   * {@code url} as one repository has one spelling: scheme and host in lower case, no default
   * port, no trailing slash. The path keeps its case and {@code .git}: servers may tell them
   * apart, and two repositories must never share a mirror.
   */
  static String normalise(URI url) {
    String scheme = url.getScheme().toLowerCase(Locale.ROOT);
    int port = url.getPort();
    if ((scheme.equals("https") && port == 443) || (scheme.equals("http") && port == 80)) {
      port = -1;
    }
    String path = url.getRawPath() == null ? "" : url.getRawPath();
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    return scheme + "://" + url.getHost().toLowerCase(Locale.ROOT)
        + (port < 0 ? "" : ":" + port) + path;
  }

  /** Where the mirror of {@code key} is, once it exists. */
  Path mirror(String key) {
    return mirrors.resolve(key + ".git");
  }

  /** Where the checkouts made ahead from the mirror of {@code key} are. */
  Path readyDir(String key) {
    return ready.resolve(key);
  }

  /** A new path under tmp/ for a ready checkout to be made in; not made yet. */
  Path newReadyTemp() {
    byte[] bytes = new byte[8];
    RANDOM.nextBytes(bytes);
    return tmp.resolve(READY_TEMP + HexFormat.of().formatHex(bytes));
  }

  /** Whether a complete mirror is at {@code dir}: a git repository that was installed. */
  static boolean isMirror(Path dir) {
    return Files.isRegularFile(dir.resolve(ABOUT))
        && RepositoryCache.FileKey.isGitRepository(dir.toFile(), FS.DETECTED);
  }

  /**
   * Takes the mirror of {@code key} for this job, waiting up to {@code lock-timeout} for another
   * job or worker to finish with it.
   *
   * @return the lock, or null when it stayed taken that long
   */
  MirrorLock lock(String key, BooleanSupplier cancelled) throws IOException, InterruptedException {
    return MirrorLock.acquire(lockFileOf(key), lockTimeoutNanos, cancelled);
  }

  Path lockFileOf(String key) {
    return locks.resolve(key + ".lock");
  }

  /** A new path under tmp/ for a mirror of {@code key} to be built in; not made yet. */
  Path newTemp(String key) {
    byte[] bytes = new byte[8];
    RANDOM.nextBytes(bytes);
    return tmp.resolve(key + "." + HexFormat.of().formatHex(bytes));
  }

  /** Moves a finished mirror from tmp/ into place; call with the key's lock held. */
  void install(Path temp, String key) throws IOException {
    Path target = mirror(key);
    if (Files.exists(target)) {
      discard(target);
    }
    Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
  }

  /**
   * Removes a mirror (or one being built): renamed into trash/ at once, so that nobody takes a
   * half-deleted mirror for a whole one, then deleted. Call with its lock held.
   */
  void discard(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    byte[] bytes = new byte[8];
    RANDOM.nextBytes(bytes);
    Path gone = trash.resolve(dir.getFileName() + "." + HexFormat.of().formatHex(bytes));
    try {
      Files.move(dir, gone, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      gone = dir; // trash/ is beside it, so this does not happen; delete in place then
    }
    deleteTree(gone);
  }

  /**
   * Moves {@code dir} (a job's checkout, on the cache's file system) into trash/ at once.
   *
   * @return where it is now, or empty when it could not be moved (another file system)
   */
  Optional<Path> toTrash(Path dir) {
    byte[] bytes = new byte[8];
    RANDOM.nextBytes(bytes);
    Path gone = trash.resolve("checkout." + HexFormat.of().formatHex(bytes));
    try {
      Files.move(dir, gone, StandardCopyOption.ATOMIC_MOVE);
      return Optional.of(gone);
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /** Notes that the mirror of {@code key} was used now, for least-recently-used eviction. */
  void touch(String key) {
    Path used = mirror(key).resolve(USED);
    try {
      if (!Files.exists(used)) {
        Files.createFile(used);
      }
      Files.setLastModifiedTime(used, FileTime.fromMillis(System.currentTimeMillis()));
    } catch (IOException e) {
      // Only the eviction order suffers.
    }
  }

  /** One mirror as eviction sees it. */
  record Entry(String key, Path dir, long bytes, long lastUsedMillis) {}

  /** Every installed mirror, with its size and last use. */
  List<Entry> entries() throws IOException {
    List<Entry> entries = new ArrayList<>();
    try (DirectoryStream<Path> dirs = Files.newDirectoryStream(mirrors, "*.git")) {
      for (Path dir : dirs) {
        String name = dir.getFileName().toString();
        String key = name.substring(0, name.length() - ".git".length());
        long used;
        try {
          used = Files.getLastModifiedTime(dir.resolve(USED)).toMillis();
        } catch (IOException e) {
          used = lastModified(dir);
        }
        entries.add(new Entry(key, dir, size(dir) + ReadyCheckouts.bytes(readyDir(key)), used));
      }
    } catch (NoSuchFileException e) {
      // No mirror yet.
    }
    return entries;
  }

  /** The bytes of all installed mirrors. */
  long totalSize() throws IOException {
    return entries().stream().mapToLong(Entry::bytes).sum();
  }

  /**
   * Removes least recently used mirrors until all of them fit {@code max-size} again. A mirror
   * that a job (of any worker sharing the directory) holds is never removed; it is skipped. One
   * process evicts at a time; another one that is evicting already is left to it.
   *
   * @param log says what was removed, without naming other jobs' repositories
   */
  void evict(Consumer<String> log) {
    try (MirrorLock evicting = MirrorLock.tryAcquire(root.resolve("evict.lock"))) {
      if (evicting == null) {
        return;
      }
      List<Entry> entries = new ArrayList<>(entries());
      long total = entries.stream().mapToLong(Entry::bytes).sum();
      if (total <= maxSize) {
        return;
      }
      entries.sort(Comparator.comparingLong(Entry::lastUsedMillis));
      int removed = 0;
      long freed = 0;
      int busy = 0;
      for (Entry entry : entries) {
        if (total <= maxSize) {
          break;
        }
        try (MirrorLock held = MirrorLock.tryAcquire(lockFileOf(entry.key()))) {
          if (held == null) {
            busy++;
            continue;
          }
          discard(entry.dir());
          discard(readyDir(entry.key()));
          total -= entry.bytes();
          freed += entry.bytes();
          removed++;
        }
      }
      if (removed > 0 || busy > 0) {
        log.accept("the git cache was over its max-size of " + Sizes.format(maxSize)
            + ": removed " + removed + " least recently used mirror" + (removed == 1 ? "" : "s")
            + " (" + Sizes.format(freed) + ")"
            + (busy > 0 ? "; " + busy + " in use kept" : "")
            + ", " + Sizes.format(Math.max(total, 0)) + " left");
      }
    } catch (IOException e) {
      log.accept("could not evict from the git cache " + root + ": " + e.getMessage());
    }
  }

  /**
   * Removes what crashed jobs left: every mirror under trash/, and each one under tmp/ whose key
   * no job holds (a job that builds one holds its key's lock until it is installed or removed).
   */
  void sweep(Consumer<String> log) {
    try (DirectoryStream<Path> gone = Files.newDirectoryStream(trash)) {
      for (Path dir : gone) {
        deleteTree(dir);
      }
    } catch (IOException e) {
      log.accept("could not empty " + trash + ": " + e.getMessage());
    }
    try (DirectoryStream<Path> building = Files.newDirectoryStream(tmp)) {
      for (Path dir : building) {
        if (dir.getFileName().toString().startsWith(READY_TEMP)) {
          // Made by a background thread that records nothing; one this old was abandoned.
          if (System.currentTimeMillis() - lastModified(dir) > READY_TEMP_MAX_AGE_MILLIS) {
            deleteTree(dir);
          }
        } else {
          removeAbandoned(dir, log);
        }
      }
    } catch (IOException e) {
      log.accept("could not clean " + tmp + ": " + e.getMessage());
    }
    // Ready checkouts of a mirror that is gone (a crash between the two removals).
    try (DirectoryStream<Path> keys = Files.newDirectoryStream(ready)) {
      for (Path dir : keys) {
        String key = dir.getFileName().toString();
        if (!Files.exists(mirror(key))) {
          try (MirrorLock held = MirrorLock.tryAcquire(lockFileOf(key))) {
            if (held != null && !Files.exists(mirror(key))) {
              discard(dir);
            }
          }
        }
      }
    } catch (IOException e) {
      log.accept("could not clean " + ready + ": " + e.getMessage());
    }
  }

  /**
   * Removes the mirror a crashed job was building at {@code path}, recorded with {@link
   * #LEFTOVER}, if it is one of this cache's and nobody is building it now.
   *
   * @return whether something was removed
   */
  boolean removeAbandoned(Path path, Consumer<String> log) {
    Path normal = path.toAbsolutePath().normalize();
    Matcher name = TEMP_NAME.matcher(normal.getFileName() == null ? "" : normal.getFileName()
        .toString());
    if (!tmp.equals(normal.getParent()) || !name.matches() || !Files.exists(normal)) {
      return false;
    }
    try (MirrorLock held = MirrorLock.tryAcquire(lockFileOf(name.group(1)))) {
      if (held == null) {
        return false; // being built right now
      }
      discard(normal);
      log.accept("removed the unfinished git mirror " + normal);
      return true;
    } catch (IOException e) {
      log.accept("could not remove the unfinished git mirror " + normal + ": " + e.getMessage());
      return false;
    }
  }

  /** Whether {@code path} is where this cache builds mirrors. */
  boolean isTemp(Path path) {
    return tmp.equals(path.toAbsolutePath().normalize().getParent());
  }

  /** Writes what a mirror is of, for people; last, since its presence marks a mirror whole. */
  static void describe(Path dir, String url, boolean token) throws IOException {
    Files.writeString(dir.resolve(ABOUT), "url " + url + "\ncredential "
        + (token ? "a token (its hash is in the directory's name)" : "none") + "\n",
        StandardCharsets.UTF_8);
  }

  private static long lastModified(Path dir) {
    try {
      return Files.getLastModifiedTime(dir).toMillis();
    } catch (IOException e) {
      return 0;
    }
  }

  /** The bytes of the files under {@code dir}. */
  static long size(Path dir) {
    long[] total = {0};
    try {
      Files.walkFileTree(dir, new SimpleFileVisitor<>() {
        @Override
        public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
          total[0] += attrs.size();
          return FileVisitResult.CONTINUE;
        }

        @Override
        public FileVisitResult visitFileFailed(Path file, IOException e) {
          return FileVisitResult.CONTINUE;
        }
      });
    } catch (IOException e) {
      // Counted what could be read.
    }
    return total[0];
  }

  /** Deletes a directory tree; read-only pack files and entries that vanish meanwhile included. */
  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(dir, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes attrs) {
        d.toFile().setWritable(true, true);
        d.toFile().setExecutable(true, true);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        Files.deleteIfExists(file);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
        if (e instanceof NoSuchFileException) {
          return FileVisitResult.CONTINUE;
        }
        throw e;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
        if (e != null && !(e instanceof NoSuchFileException)) {
          throw e;
        }
        Files.deleteIfExists(d);
        return FileVisitResult.CONTINUE;
      }
    });
  }

  private static String sha256(String text) {
    try {
      return HexFormat.of().formatHex(
          MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }
}

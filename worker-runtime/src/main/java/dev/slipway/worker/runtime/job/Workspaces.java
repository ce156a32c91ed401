package dev.slipway.worker.runtime.job;

import dev.slipway.worker.runtime.config.StartupException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Makes and removes job workspaces under {@code worker.workspace-root}. */
public final class Workspaces {
  private static final Logger LOG = LoggerFactory.getLogger(Workspaces.class);
  /** Every workspace's name starts so, which lets start-up find those a crash left behind. */
  static final String PREFIX = "job-";

  private final Path root;

  public Workspaces(Path root) {
    this.root = root;
  }

  public Path root() {
    return root;
  }

  /** The workspace root held by one worker; released when closed. */
  public static final class Lock implements AutoCloseable {
    private final FileChannel channel;
    private final FileLock lock;

    private Lock(FileChannel channel, FileLock lock) {
      this.channel = channel;
      this.lock = lock;
    }

    @Override
    public void close() {
      try {
        lock.release();
        channel.close();
      } catch (IOException e) {
        LOG.warn("cannot release the workspace root's lock: {}", e.toString());
      }
    }
  }

  /**
   * Takes the workspace root for this worker, so that a second worker on the same root (which
   * would remove the first one's workspaces as leftovers) refuses to start.
   *
   * @throws StartupException when another process holds it
   */
  public Lock lock() throws IOException, StartupException {
    Files.createDirectories(root);
    Path file = root.resolve(".slipway.lock");
    FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE,
        StandardOpenOption.WRITE);
    FileLock lock;
    try {
      lock = channel.tryLock();
    } catch (OverlappingFileLockException e) {
      lock = null;
    }
    if (lock == null) {
      channel.close();
      throw new StartupException("the worker cannot start", List.of("worker.workspace-root "
          + root + " is in use by another worker on this host; give each worker its own"));
    }
    return new Lock(channel, lock);
  }

  /**
   * A new, empty directory that only the worker's user can read, and its state file: the file
   * first, on disk before the directory is made, so that a crash never leaves a workspace that no
   * state file names.
   */
  JobStateFile create(String jobId) throws IOException {
    Files.createDirectories(root);
    Path dir = root.resolve(PREFIX + jobId + "-" + Long.toHexString(System.nanoTime()));
    JobStateFile state = JobStateFile.create(dir, jobId);
    try {
      try {
        Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(
            PosixFilePermissions.fromString("rwx------")));
      } catch (UnsupportedOperationException e) {
        Files.createDirectory(dir);
      }
    } catch (IOException | RuntimeException e) {
      state.delete();
      throw e;
    }
    return state;
  }

  /** The state files of jobs that did not end (a worker crashed), oldest name first. */
  List<Path> stateFiles() {
    if (!Files.isDirectory(root)) {
      return List.of();
    }
    try (Stream<Path> children = Files.list(root)) {
      return children.filter(p -> JobStateFile.workspaceOf(p).isPresent()
              && Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS))
          .sorted().toList();
    } catch (IOException e) {
      LOG.warn("cannot list {} to find what crashed jobs left: {}", root, e.toString());
      return List.of();
    }
  }

  /**
   * Removes workspaces that no state file names (a worker of an older version, or a state file
   * lost): called after {@link Recovery} has handled those that have one.
   */
  public void removeLeftovers() {
    if (!Files.isDirectory(root)) {
      return;
    }
    try (Stream<Path> children = Files.list(root)) {
      for (Path child : children.filter(p -> p.getFileName().toString().startsWith(PREFIX))
          .toList()) {
        LOG.warn("removing workspace {} left behind by an earlier run", child);
        delete(child);
      }
    } catch (IOException e) {
      LOG.warn("cannot list {} to remove old workspaces: {}", root, e.toString());
    }
  }

  /** Deletes a directory tree; read-only entries (git pack files) included. */
  static void delete(Path dir) throws IOException {
    if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(dir, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes attrs)
          throws IOException {
        // A directory without write permission would keep its entries.
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
        if (e != null) {
          throw e;
        }
        Files.deleteIfExists(d);
        return FileVisitResult.CONTINUE;
      }
    });
  }
}

package dev.slipway.plugin.git.jgit;

import java.io.BufferedOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.BooleanSupplier;
import java.util.regex.Pattern;
import org.eclipse.jgit.internal.storage.pack.PackWriter;
import org.eclipse.jgit.lib.AnyObjectId;
import org.eclipse.jgit.lib.Constants;
import org.eclipse.jgit.lib.ObjectId;
import org.eclipse.jgit.lib.ObjectReader;
import org.eclipse.jgit.lib.ProgressMonitor;
import org.eclipse.jgit.lib.Repository;
import org.eclipse.jgit.revwalk.DepthWalk;
import org.eclipse.jgit.revwalk.RevCommit;
import org.eclipse.jgit.revwalk.RevObject;
import org.eclipse.jgit.revwalk.RevTag;
import org.eclipse.jgit.storage.pack.PackConfig;

/**
 * What a checkout takes from a mirror, done locally: whether the mirror holds a commit with
 * enough history, and the objects of the checkout's {@code .git}, written as one pack of exactly
 * what a clone at the job's depth would have received (and a {@code shallow} file to match), so
 * that the workspace stands alone: it needs nothing of the mirror afterwards, which may be
 * evicted or repacked while the job's later stages run.
 *
 * <p>The pack is made by JGit's {@link PackWriter} from the mirror's own packs, reusing their
 * compressed objects and deltas as they are (no delta search, nothing inflated but the few
 * objects whose delta base is not in the checkout); its index is written by the same writer, so
 * nothing is parsed again. Each reused object's checksum is verified, which, with the missing
 * objects the walk runs into, is how a damaged mirror shows.
 */
final class MirrorObjects {
  private static final Pattern OBJECT_FILE =
      Pattern.compile("pack-[0-9a-f]{40,64}\\.(pack|idx|rev|bitmap)|[0-9a-f]{38,62}");

  private MirrorObjects() {}

  /** A write into the checkout failed: the checkout's problem, not the mirror's. */
  static final class WorkspaceWriteException extends IOException {
    private static final long serialVersionUID = 1L;

    WorkspaceWriteException(IOException cause) {
      super(cause.getMessage(), cause);
    }
  }

  /** Counts each write into the checkout, and stops when the job must. */
  interface WriteCheck {
    /** Called before {@code bytes} more are written. */
    void writing(long bytes) throws IOException;
  }

  /**
   * Whether {@code repository} holds {@code id}, and, when it names a commit (or a tag of one),
   * that commit with at least {@code depth} commits of history (all of it for 0), as far as
   * the history goes. An object that is not a commit counts as held: the caller reports it.
   *
   * @throws IOException when the mirror cannot be read, or misses an object it should have
   */
  static boolean hasHistory(Repository repository, AnyObjectId id, int depth) throws IOException {
    try (ObjectReader reader = repository.newObjectReader()) {
      if (!reader.has(id)) {
        return false;
      }
      Set<ObjectId> shallow = reader.getShallowCommits();
      int walkDepth = depth == 0 ? Integer.MAX_VALUE : depth - 1;
      try (DepthWalk.RevWalk walk = new DepthWalk.RevWalk(reader, walkDepth)) {
        RevObject object = walk.parseAny(id);
        while (object instanceof RevTag tag) {
          if (!reader.has(tag.getObject())) {
            return false;
          }
          object = walk.parseAny(tag.getObject());
        }
        if (!(object instanceof RevCommit commit)) {
          return true;
        }
        if (shallow.isEmpty()) {
          return true; // The whole history is kept; a missing object shows while packing.
        }
        walk.markRoot(commit);
        for (RevCommit c = walk.next(); c != null; c = walk.next()) {
          // A commit cut off above the depth asked for: its parents were never fetched.
          if (((DepthWalk.Commit) c).getDepth() < walkDepth && shallow.contains(c)
              && hasParents(reader, c)) {
            return false;
          }
        }
        return true;
      }
    }
  }

  /** Whether the commit's own text names a parent, whatever a shallow file says. */
  private static boolean hasParents(ObjectReader reader, AnyObjectId commit) throws IOException {
    byte[] raw = reader.open(commit, Constants.OBJ_COMMIT).getCachedBytes();
    String head = new String(raw, 0, Math.min(raw.length, 256), StandardCharsets.ISO_8859_1);
    return head.contains("\nparent ");
  }

  /** Whether the mirror has its history whole: nothing cut off by a shallow fetch. */
  static boolean complete(Repository repository) throws IOException {
    return repository.getObjectDatabase().getShallowCommits().isEmpty();
  }

  /**
   * Writes into {@code gitDir} (a new repository's {@code .git}) one pack holding {@code want}
   * and its history at {@code depth} (0: all of it), as the mirror has it, and the shallow file
   * that cuts the history where the pack does.
   *
   * @param monitor progress; its cancellation stops the writing
   * @param check counts every byte written against the size limit, and stops on cancellation
   * @return the pack's size in bytes
   * @throws WorkspaceWriteException when writing into the checkout failed
   * @throws IOException when the mirror could not be read: it is damaged
   */
  static long writePack(Repository mirror, ObjectId want, int depth, Path gitDir,
      ProgressMonitor monitor, WriteCheck check) throws IOException {
    Path packDir = gitDir.resolve("objects").resolve("pack");
    Path tmpPack = packDir.resolve("tmp_mirror.pack");
    Path tmpIdx = packDir.resolve("tmp_mirror.idx");
    try {
      Files.createDirectories(packDir);
    } catch (IOException e) {
      throw new WorkspaceWriteException(e);
    }
    Set<ObjectId> mirrorShallow = mirror.getObjectDatabase().getShallowCommits();
    PackConfig config = new PackConfig(mirror);
    // Copy what the mirror has, as it is: a delta search would cost more than it saves here.
    config.setDeltaCompress(false);
    config.setReuseDeltas(true);
    config.setReuseObjects(true);
    config.setBuildBitmaps(false);
    long written;
    String name;
    Set<ObjectId> shallow = new TreeSet<>();
    try (ObjectReader reader = mirror.newObjectReader();
        PackWriter writer = new PackWriter(config, reader)) {
      writer.setUseBitmaps(false);
      writer.setUseCachedPacks(false);
      writer.setThin(false);
      writer.setDeltaBaseAsOffset(true);
      writer.setReuseValidatingObjects(true);
      if (depth > 0) {
        writer.setShallowPack(depth, List.of());
      }
      writer.preparePack(monitor, Set.of(want), PackWriter.NONE, mirrorShallow,
          PackWriter.NONE);
      shallow.addAll(boundary(reader, want, depth, mirrorShallow, writer));
      CountingStream pack = new CountingStream(open(tmpPack), check);
      try (OutputStream out = new BufferedOutputStream(pack, 64 * 1024)) {
        writer.writePack(monitor, monitor, out);
      }
      written = pack.count;
      name = writer.computeName().name();
      try (OutputStream out =
          new BufferedOutputStream(new CountingStream(open(tmpIdx), check), 64 * 1024)) {
        writer.writeIndex(out);
      }
    }
    try {
      // The index last: JGit reads a pack once both are there.
      Files.move(tmpPack, packDir.resolve("pack-" + name + ".pack"),
          StandardCopyOption.ATOMIC_MOVE);
      Files.move(tmpIdx, packDir.resolve("pack-" + name + ".idx"),
          StandardCopyOption.ATOMIC_MOVE);
      writeShallow(gitDir, shallow);
    } catch (IOException e) {
      throw new WorkspaceWriteException(e);
    }
    return written;
  }

  /**
   * Removes every object of a checkout's {@code .git} (packs and loose objects), its shallow
   * file and its reflogs, which name the old commits: {@link #writePack} then gives it exactly a
   * new clone's objects.
   *
   * @throws WorkspaceWriteException when they cannot be removed
   */
  static void removeObjects(Path gitDir) throws WorkspaceWriteException {
    Path objects = gitDir.resolve("objects");
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(objects)) {
      for (Path entry : entries) {
        String name = entry.getFileName().toString();
        if (name.equals("pack") || name.matches("[0-9a-f]{2}")) {
          MirrorCache.deleteTree(entry);
        }
      }
      Files.deleteIfExists(gitDir.resolve(Constants.SHALLOW));
      MirrorCache.deleteTree(gitDir.resolve(Constants.LOGS));
    } catch (IOException e) {
      throw new WorkspaceWriteException(e);
    }
  }

  /**
   * The commits of the pack whose parents it does not hold: those at the depth asked for (as
   * git's upload-pack marks them), and those the mirror itself holds without their parents.
   */
  private static Set<ObjectId> boundary(ObjectReader reader, ObjectId want, int depth,
      Set<ObjectId> mirrorShallow, PackWriter writer) throws IOException {
    Set<ObjectId> boundary = new HashSet<>();
    for (ObjectId id : mirrorShallow) {
      if (writer.willInclude(id)) {
        boundary.add(id.copy());
      }
    }
    if (depth == 0) {
      return boundary;
    }
    int walkDepth = depth - 1;
    try (DepthWalk.RevWalk walk = new DepthWalk.RevWalk(reader, walkDepth)) {
      walk.markRoot(walk.parseCommit(want));
      for (RevCommit c = walk.next(); c != null; c = walk.next()) {
        if (((DepthWalk.Commit) c).getDepth() == walkDepth && c.getParentCount() > 0) {
          boundary.add(c.copy());
        }
      }
    }
    return boundary;
  }

  /**
   * Links into {@code gitDir} the objects of a mirror that this job has just made, whose only
   * fetch was this job's: they are exactly what the checkout needs. A hard link where the file
   * system allows (pack files never change; a later repack of the mirror makes new files), else
   * a copy. The shallow file is copied.
   *
   * @return the bytes linked or copied
   */
  static long linkObjects(Repository mirror, Path gitDir, WriteCheck check) throws IOException {
    Path from = mirror.getDirectory().toPath().resolve("objects");
    Path to = gitDir.resolve("objects");
    long bytes = 0;
    List<Path> files = new ArrayList<>();
    collect(from.resolve("pack"), files);
    try (DirectoryStream<Path> dirs = Files.newDirectoryStream(from, "[0-9a-f][0-9a-f]")) {
      for (Path dir : dirs) {
        collect(dir, files);
      }
    }
    // Indexes after packs, so that no index is ever there without its pack.
    files.sort((a, b) -> Boolean.compare(a.toString().endsWith(".idx"),
        b.toString().endsWith(".idx")));
    for (Path file : files) {
      Path target = to.resolve(from.relativize(file).toString());
      long size = Files.size(file);
      check.writing(size);
      try {
        Files.createDirectories(target.getParent());
        try {
          Files.createLink(target, file);
        } catch (FileSystemException | UnsupportedOperationException e) {
          Files.copy(file, target);
        }
      } catch (IOException e) {
        throw new WorkspaceWriteException(e);
      }
      bytes += size;
    }
    Path shallow = mirror.getDirectory().toPath().resolve(Constants.SHALLOW);
    if (Files.exists(shallow)) {
      try {
        Files.copy(shallow, gitDir.resolve(Constants.SHALLOW), StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        throw new WorkspaceWriteException(e);
      }
    }
    return bytes;
  }

  private static void collect(Path dir, List<Path> files) throws IOException {
    if (!Files.isDirectory(dir)) {
      return;
    }
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path entry : entries) {
        if (OBJECT_FILE.matcher(entry.getFileName().toString()).matches()
            && Files.isRegularFile(entry)) {
          files.add(entry);
        }
      }
    }
  }

  /** How many packs the mirror has: many small ones (one per fetch) slow every read. */
  static int packCount(Repository mirror) {
    Path dir = mirror.getDirectory().toPath().resolve("objects").resolve("pack");
    int count = 0;
    try (DirectoryStream<Path> packs = Files.newDirectoryStream(dir, "pack-*.pack")) {
      for (Path ignored : packs) {
        count++;
      }
    } catch (IOException e) {
      return 0;
    }
    return count;
  }

  private static void writeShallow(Path gitDir, Set<ObjectId> shallow) throws IOException {
    if (shallow.isEmpty()) {
      return;
    }
    StringBuilder text = new StringBuilder();
    for (ObjectId id : shallow) {
      text.append(id.name()).append('\n');
    }
    Files.writeString(gitDir.resolve(Constants.SHALLOW), text, StandardCharsets.US_ASCII);
  }

  private static OutputStream open(Path file) throws WorkspaceWriteException {
    try {
      return Files.newOutputStream(file);
    } catch (IOException e) {
      throw new WorkspaceWriteException(e);
    }
  }

  /**
   * The checkout's file: counts what is written, asks {@link WriteCheck} first, and tells a
   * failed write (the checkout's disk) from a failed read (the mirror's).
   */
  private static final class CountingStream extends FilterOutputStream {
    private final WriteCheck check;
    long count;

    CountingStream(OutputStream out, WriteCheck check) {
      super(out);
      this.check = check;
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      check.writing(len);
      try {
        out.write(b, off, len);
      } catch (IOException e) {
        throw new WorkspaceWriteException(e);
      }
      count += len;
    }

    @Override
    public void close() throws IOException {
      try {
        super.close();
      } catch (IOException e) {
        throw e instanceof WorkspaceWriteException ? e : new WorkspaceWriteException(e);
      }
    }
  }

  /** A progress monitor that stops the pack writer, which asks nobody, when the job must stop. */
  static ProgressMonitor stopping(ProgressMonitor monitor, BooleanSupplier stop) {
    return new ProgressMonitor() {
      @Override
      public void start(int totalTasks) {
        monitor.start(totalTasks);
      }

      @Override
      public void beginTask(String title, int totalWork) {
        stopIfAsked();
        monitor.beginTask(title, totalWork);
      }

      @Override
      public void update(int completed) {
        stopIfAsked();
        monitor.update(completed);
      }

      @Override
      public void endTask() {
        monitor.endTask();
      }

      @Override
      public boolean isCancelled() {
        return stop.getAsBoolean();
      }

      @Override
      public void showDuration(boolean enabled) {}

      private void stopIfAsked() {
        if (stop.getAsBoolean()) {
          throw new Stopped();
        }
      }
    };
  }

  /** Thrown out of the pack writer's progress calls to stop it; caught by the clone. */
  static final class Stopped extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Stopped() {
      super("the clone was stopped", null, false, false);
    }
  }

  /** For a stop asked inside a write. */
  static InterruptedIOException interrupted() {
    return new InterruptedIOException("the clone was stopped");
  }
}

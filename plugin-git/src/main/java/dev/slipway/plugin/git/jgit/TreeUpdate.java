package dev.slipway.plugin.git.jgit;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import org.eclipse.jgit.dircache.Checkout;
import org.eclipse.jgit.dircache.DirCache;
import org.eclipse.jgit.dircache.DirCacheBuilder;
import org.eclipse.jgit.dircache.DirCacheCheckout.CheckoutMetadata;
import org.eclipse.jgit.dircache.DirCacheEditor;
import org.eclipse.jgit.dircache.DirCacheEntry;
import org.eclipse.jgit.lib.Constants;
import org.eclipse.jgit.lib.CoreConfig.EolStreamType;
import org.eclipse.jgit.lib.FileMode;
import org.eclipse.jgit.lib.ObjectId;
import org.eclipse.jgit.lib.ObjectReader;
import org.eclipse.jgit.lib.Repository;
import org.eclipse.jgit.treewalk.TreeWalk;
import org.eclipse.jgit.treewalk.filter.TreeFilter;

/**
 * Moves a pristine checkout from one tree to another by writing only the paths that differ,
 * and updating its index to match. Pristine means made by the stage and never handed out, so the
 * work tree is trusted to be the old tree: JGit's {@code DirCacheCheckout} would compare every
 * file with the index, and, with files as new as the index (so "racily clean"), read and hash
 * each one again, which on the benchmark's 644 files took 150 to 260 ms for a change of one;
 * writing the index does the same for its "smudged" entries, so they are given their stat data
 * first ({@link #trustUnchanged}).
 *
 * <p>Only for plain files and symbolic links, without attributes: with a {@code .gitattributes}
 * (end-of-line conversion, filters) in either tree, or a submodule, {@link #plan} says no and the
 * caller makes the whole checkout (JGit's {@code DirCacheCheckout} from one tree to the other
 * applied the old tree's attributes to the new files, unlike git).
 */
final class TreeUpdate {
  private TreeUpdate() {}

  /** What moving from one tree to the other writes and removes, and the bytes it writes. */
  record Plan(List<String> removed, List<DirCacheEntry> written, long bytes) {
    int paths() {
      return removed.size() + written.size();
    }
  }

  /**
   * The paths that differ between {@code from} and {@code to}, read from {@code repository}
   * (the mirror, which holds both); empty when either tree has attributes or a submodule, or
   * when the new tree is one git would refuse to check out (a path that is a file and a folder,
   * a name like {@code ..} or {@code .git}): the whole checkout then says what is wrong.
   */
  static Optional<Plan> plan(Repository repository, ObjectId from, ObjectId to)
      throws IOException {
    try (ObjectReader reader = repository.newObjectReader()) {
      if (!plain(reader, to) || !plain(reader, from)) {
        return Optional.empty();
      }
      List<String> removed = new ArrayList<>();
      List<DirCacheEntry> written = new ArrayList<>();
      long bytes = 0;
      try (TreeWalk walk = new TreeWalk(reader)) {
        walk.addTree(from);
        walk.addTree(to);
        walk.setRecursive(true);
        walk.setFilter(TreeFilter.ANY_DIFF);
        while (walk.next()) {
          FileMode after = walk.getFileMode(1);
          if (after == FileMode.MISSING) {
            removed.add(walk.getPathString());
            continue;
          }
          DirCacheEntry entry = new DirCacheEntry(walk.getPathString()); // checks the path
          entry.setFileMode(after);
          entry.setObjectId(walk.getObjectId(1));
          written.add(entry);
          bytes += reader.getObjectSize(walk.getObjectId(1), Constants.OBJ_BLOB);
        }
      }
      return Optional.of(new Plan(removed, written, bytes));
    } catch (RuntimeException e) {
      // JGit's refusals of a path or a mode: the whole checkout refuses it the same way.
      return Optional.empty();
    }
  }

  /**
   * Carries out {@code plan} in {@code repository}'s work tree and index. Removals first, with
   * the folders they leave empty, so that a folder that becomes a file finds its place free.
   *
   * @throws InterruptedIOException when {@code stop} says so (checked every 64 paths)
   */
  static void apply(Repository repository, Plan plan, BooleanSupplier stop) throws IOException {
    Path root = repository.getWorkTree().toPath();
    DirCache index = repository.lockDirCache();
    try {
      DirCacheEditor editor = index.editor();
      int done = 0;
      for (String path : plan.removed()) {
        stopIf(stop, ++done);
        Path file = root.resolve(path);
        Files.deleteIfExists(file);
        for (Path dir = file.getParent(); dir != null && !dir.equals(root);
            dir = dir.getParent()) {
          try {
            Files.delete(dir);
          } catch (DirectoryNotEmptyException | NoSuchFileException e) {
            break;
          }
        }
        editor.add(new DirCacheEditor.DeletePath(path));
      }
      Checkout checkout = new Checkout(repository).setRecursiveDeletion(true);
      CheckoutMetadata plain = new CheckoutMetadata(EolStreamType.DIRECT, null);
      try (ObjectReader reader = repository.newObjectReader()) {
        for (DirCacheEntry entry : plan.written()) {
          stopIf(stop, ++done);
          // Writes the blob (through a temporary file, replacing what is there), sets the
          // executable bit or makes the link, and records the file's size and time in entry.
          checkout.checkout(entry, plain, reader, null);
          editor.add(new DirCacheEditor.PathEdit(entry) {
            @Override
            public void apply(DirCacheEntry current) {
              current.copyMetaData(entry); // mode, object, the file's size and time
            }
          });
        }
      }
      editor.finish();
      trustUnchanged(index, root);
      index.write();
      if (!index.commit()) {
        throw new IOException("could not write the checkout's index");
      }
    } finally {
      index.unlock();
    }
  }

  private static void stopIf(BooleanSupplier stop, int done) throws InterruptedIOException {
    if (done % 64 == 0 && stop.getAsBoolean()) {
      throw MirrorObjects.interrupted();
    }
  }

  /**
   * Gives the index entries the checkout wrote "smudged" (files as new as the index, so their
   * stat data could not be trusted then) their files' size and time, as {@code git update-index
   * --refresh} would after hashing them: the files are the ones the stage wrote, untouched since.
   * Else writing the index makes JGit read and hash every such file again.
   */
  private static void trustUnchanged(DirCache index, Path root) throws IOException {
    for (int i = 0; i < index.getEntryCount(); i++) {
      DirCacheEntry entry = index.getEntry(i);
      if (entry.isSmudged()) {
        BasicFileAttributes file = Files.readAttributes(root.resolve(entry.getPathString()),
            BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        entry.setLength(file.size());
        entry.setLastModified(file.lastModifiedTime().toInstant());
      }
    }
  }

  /**
   * Whether {@code tree} goes into an index as {@code DirCacheCheckout} would put it, with
   * neither a {@code .gitattributes} nor a submodule in it. The in-core index is built as a
   * checkout builds it, which throws on a path that is a file and a folder at once.
   */
  private static boolean plain(ObjectReader reader, ObjectId tree) throws IOException {
    DirCache index = DirCache.newInCore();
    DirCacheBuilder builder = index.builder();
    builder.addTree(new byte[0], DirCacheEntry.STAGE_0, reader, tree);
    builder.finish();
    for (int i = 0; i < index.getEntryCount(); i++) {
      DirCacheEntry entry = index.getEntry(i);
      String path = entry.getPathString();
      if (entry.getFileMode() == FileMode.GITLINK || path.equals(Constants.DOT_GIT_ATTRIBUTES)
          || path.endsWith("/" + Constants.DOT_GIT_ATTRIBUTES)) {
        return false;
      }
    }
    return true;
  }
}

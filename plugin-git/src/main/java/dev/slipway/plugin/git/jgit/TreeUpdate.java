package dev.slipway.plugin.git.jgit;

import java.io.IOException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.eclipse.jgit.dircache.Checkout;
import org.eclipse.jgit.dircache.DirCache;
import org.eclipse.jgit.dircache.DirCacheCheckout.CheckoutMetadata;
import org.eclipse.jgit.dircache.DirCacheEditor;
import org.eclipse.jgit.dircache.DirCacheEntry;
import org.eclipse.jgit.lib.Constants;
import org.eclipse.jgit.lib.CoreConfig.EolStreamType;
import org.eclipse.jgit.lib.FileMode;
import org.eclipse.jgit.lib.ObjectReader;
import org.eclipse.jgit.lib.Repository;
import org.eclipse.jgit.revwalk.RevTree;
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
 * (end-of-line conversion, filters) in either tree, or a submodule, the caller makes the whole
 * checkout instead (JGit's {@code DirCacheCheckout} from one tree to the other applied the old
 * tree's attributes to the new files, unlike git).
 */
final class TreeUpdate {
  private TreeUpdate() {}

  /**
   * Writes and removes what differs between {@code from} (what the work tree holds) and
   * {@code to}.
   *
   * @return the paths written or removed; empty, with nothing changed, when either tree has
   *     attributes or a submodule
   */
  static OptionalInt apply(Repository repository, RevTree from, RevTree to) throws IOException {
    if (hasAttributesOrSubmodules(repository, to) || hasAttributesOrSubmodules(repository, from)) {
      return OptionalInt.empty();
    }
    List<String> removed = new ArrayList<>();
    List<DirCacheEntry> written = new ArrayList<>();
    try (TreeWalk walk = new TreeWalk(repository)) {
      walk.addTree(from);
      walk.addTree(to);
      walk.setRecursive(true);
      walk.setFilter(TreeFilter.ANY_DIFF);
      while (walk.next()) {
        FileMode before = walk.getFileMode(0);
        FileMode after = walk.getFileMode(1);
        if (after == FileMode.MISSING) {
          removed.add(walk.getPathString());
          continue;
        }
        if (before != FileMode.MISSING && before.getObjectType() != Constants.OBJ_BLOB) {
          return OptionalInt.empty(); // not a file before: left to DirCacheCheckout
        }
        DirCacheEntry entry = new DirCacheEntry(walk.getPathString());
        entry.setFileMode(after);
        entry.setObjectId(walk.getObjectId(1));
        written.add(entry);
      }
    }
    Path root = repository.getWorkTree().toPath();
    DirCache index = repository.lockDirCache();
    try {
      DirCacheEditor editor = index.editor();
      // Removals first, with the folders they leave empty: a folder that becomes a file needs
      // its place free.
      for (String path : removed) {
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
        for (DirCacheEntry entry : written) {
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
    return OptionalInt.of(removed.size() + written.size());
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

  private static boolean hasAttributesOrSubmodules(Repository repository, RevTree tree)
      throws IOException {
    try (TreeWalk walk = new TreeWalk(repository)) {
      walk.addTree(tree);
      walk.setRecursive(true);
      while (walk.next()) {
        if (walk.getFileMode(0) == FileMode.GITLINK
            || Constants.DOT_GIT_ATTRIBUTES.equals(walk.getNameString())) {
          return true;
        }
      }
    }
    return false;
  }
}

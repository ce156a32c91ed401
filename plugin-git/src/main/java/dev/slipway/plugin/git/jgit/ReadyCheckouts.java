package dev.slipway.plugin.git.jgit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jgit.lib.ObjectId;

/**
 * Checkouts made ahead of time from a mirror, one per branch or ref and depth, at the commit the
 * last job for it got: the next job for that commit takes one with a rename instead of writing
 * every file. Writing the work tree is most of a clone's time once the objects are local (the
 * git CLI spends as long on it), so this is what makes a repeat job's clone a fraction of a
 * fresh one.
 *
 * <p>{@code DIR/ready/KEY/SHAPE-COMMIT-BYTES}: SHAPE is the first 16 hex digits of the sha-256 of
 * the kind (branch or ref), its name and the depth; BYTES the checkout's size when it was made,
 * so that counting the cache's size reads no work tree. Each is a complete {@code src} (work tree
 * and {@code .git}, standing alone), made under {@code tmp/} and renamed into place whole, and
 * never handed to more than one job: taking it is a rename into the job's workspace.
 */
final class ReadyCheckouts {
  /** Most ready checkouts one mirror keeps; the oldest go first. */
  static final int MAX_PER_MIRROR = 4;

  private static final Pattern NAME = Pattern.compile("([0-9a-f]{16})-([0-9a-f]{40})-([0-9]+)");

  private ReadyCheckouts() {}

  /** One ready checkout. */
  record Ready(Path dir, String shape, ObjectId commit, long bytes) {}

  /** What a checkout is of, apart from its commit: a branch or a ref, and the depth. */
  static String shape(String branch, String ref, int depth) {
    String what = branch.isEmpty() ? "ref\0" + ref : "branch\0" + branch;
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256")
          .digest((what + "\0" + depth).getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  static String name(String shape, ObjectId commit, long bytes) {
    return shape + "-" + commit.name() + "-" + bytes;
  }

  /** The ready checkouts under {@code dir} (a mirror's), newest first. */
  static List<Ready> list(Path dir) {
    List<Ready> ready = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path entry : entries) {
        Matcher m = NAME.matcher(entry.getFileName().toString());
        if (m.matches()) {
          ready.add(new Ready(entry, m.group(1), ObjectId.fromString(m.group(2)),
              Long.parseLong(m.group(3))));
        }
      }
    } catch (NoSuchFileException e) {
      return List.of();
    } catch (IOException | NumberFormatException e) {
      return List.of();
    }
    ready.sort(Comparator.comparingLong((Ready r) -> lastModified(r.dir())).reversed());
    return ready;
  }

  /** The ready checkout of exactly {@code commit} for {@code shape}, if there is one. */
  static Optional<Ready> find(Path dir, String shape, ObjectId commit) {
    return list(dir).stream()
        .filter(r -> r.shape().equals(shape) && r.commit().equals(commit))
        .findFirst();
  }

  /** The bytes of a mirror's ready checkouts, as recorded in their names. */
  static long bytes(Path dir) {
    return list(dir).stream().mapToLong(Ready::bytes).sum();
  }

  private static long lastModified(Path dir) {
    try {
      return Files.getLastModifiedTime(dir).toMillis();
    } catch (IOException e) {
      return 0;
    }
  }
}

package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * A job's {@code build_secrets} as files, for BuildKit's {@code --secret id=KEY,src=FILE}: the only
 * way a value reaches the build, where {@code RUN --mount=type=secret,id=KEY} (and nothing else)
 * reads it. Values never travel in a process's arguments or environment: the stage writes them
 * here, build.sh and the CLI see only the paths.
 *
 * <p>The files live in a directory of their own in the system's temporary directory, outside the
 * build context (which is inside the job's workspace), mode 0700, each file 0600 and named by its
 * position ({@code secret-1}, ...), never by its key (a key may be {@code ..}). {@link #close}
 * removes the directory; the stage calls it when the build ends, however it ends, and again in
 * {@code cleanup}.
 */
final class BuildSecrets implements AutoCloseable {
  /** The keys BuildKit accepts as secret ids that are also safe in build.sh's arguments. */
  static final Pattern KEY = Pattern.compile("[A-Za-z0-9_.-]{1,128}");

  /** BuildKit refuses larger secrets ({@code MaxSecretSize}, 500 KiB). */
  static final int MAX_VALUE_BYTES = 500 * 1024;

  static final BuildSecrets NONE = new BuildSecrets(Optional.empty(), Map.of());

  private static final FileAttribute<Set<PosixFilePermission>> FILE_MODE =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"));

  private final Optional<Path> dir;
  private final Map<String, Path> files;

  private BuildSecrets(Optional<Path> dir, Map<String, Path> files) {
    this.dir = dir;
    this.files = Collections.unmodifiableMap(new LinkedHashMap<>(files));
  }

  /**
   * Why {@code secrets} cannot be used, naming the key (never the value), or empty when they can.
   */
  static Optional<String> problem(Map<String, Secret> secrets) {
    for (var entry : new TreeMap<>(secrets).entrySet()) {
      String key = entry.getKey();
      // "." and ".." fit the pattern, but a secret is mounted at /run/secrets/<id> by default.
      if (!KEY.matcher(key).matches() || key.equals(".") || key.equals("..")) {
        return Optional.of("build_secrets: '" + ImageReference.printable(key) + "' is not a valid secret id"
            + " (1 to 128 letters, digits, '_', '.', '-', not '.' or '..'), as RUN --mount=type=secret,id=<id>"
            + " names it");
      }
      int bytes = entry.getValue().reveal().getBytes(StandardCharsets.UTF_8).length;
      if (bytes > MAX_VALUE_BYTES) {
        return Optional.of("build_secrets: the value of '" + key + "' has " + bytes + " bytes; BuildKit takes at"
            + " most " + MAX_VALUE_BYTES);
      }
    }
    return Optional.empty();
  }

  /**
   * Writes every secret to its own file.
   *
   * @param secrets the job's build secrets, checked by {@link #problem}
   * @param makeDir makes the new, empty 0700 directory for the files (the stage notes it for
   *     crash recovery first); called only when there are secrets
   * @throws StageException {@link BuildkitErrors#TMP_FAILED} when the files cannot be written; nothing is
   *     left behind then
   */
  static BuildSecrets write(Map<String, Secret> secrets, DirMaker makeDir) throws StageException {
    if (secrets.isEmpty()) {
      return NONE;
    }
    Path dir = makeDir.make();
    // docker and buildctl read --secret as CSV: a path with a comma or quote would be misread.
    if (dir.toString().matches("(?s).*[,\"\n\r].*")) {
      delete(dir);
      throw new StageException(BuildkitErrors.TMP_FAILED,
          "the temporary directory " + dir.getParent() + " has a comma, quote or line break in its path, which"
              + " --secret id=KEY,src=FILE cannot carry; point java.io.tmpdir elsewhere");
    }
    Map<String, Path> files = new LinkedHashMap<>();
    int n = 0;
    try {
      for (var entry : new TreeMap<>(secrets).entrySet()) {
        Path file = dir.resolve("secret-" + ++n);
        try (SeekableByteChannel out = Files.newByteChannel(
            file, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), FILE_MODE)) {
          ByteBuffer bytes = ByteBuffer.wrap(entry.getValue().reveal().getBytes(StandardCharsets.UTF_8));
          while (bytes.hasRemaining()) {
            out.write(bytes);
          }
        }
        files.put(entry.getKey(), file);
      }
    } catch (IOException | UnsupportedOperationException e) {
      delete(dir);
      // The message names the key at most, never the value.
      throw new StageException(
          BuildkitErrors.TMP_FAILED, "cannot write build secret " + n + " to " + dir + ": "
              + e.getClass().getSimpleName(), e);
    }
    return new BuildSecrets(Optional.of(dir), files);
  }

  /** Makes the directory of the secret files. */
  @FunctionalInterface
  interface DirMaker {
    Path make() throws StageException;
  }

  /** Each secret's key and the file that holds its value, sorted by key. */
  Map<String, Path> files() {
    return files;
  }

  /** The directory that holds the files, when there are any. */
  Optional<Path> dir() {
    return dir;
  }

  /** Removes the files and their directory. Never throws; safe to call more than once. */
  @Override
  public void close() {
    dir.ifPresent(BuildSecrets::delete);
  }

  /** Removes {@code dir} with everything in it; best effort (the stage's cleanup tries again). */
  static void delete(Path dir) {
    BuildLeftovers.deleteTree(dir);
  }
}

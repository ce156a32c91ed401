package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.StageException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Resolves the request's {@code dockerfile_path} and {@code context_dir} inside the checked-out
 * source tree, refusing any path that leaves it, whether by {@code ..}, by being absolute or through
 * a symbolic link.
 */
final class SourcePaths {
  /**
   * The resolved paths, both real (symbolic links followed) and inside the source tree.
   *
   * @param dockerfile the Dockerfile, a regular file
   * @param contextDir the build context, a directory
   */
  record Resolved(Path dockerfile, Path contextDir) {}

  private SourcePaths() {}

  /**
   * Checks what can be checked without the source tree: the path is relative and stays inside the
   * tree after normalisation.
   *
   * @param field the request field, for the message
   * @param value the field's value
   */
  static Path checkRelative(String field, String value) throws StageException {
    if (value.isBlank()) {
      throw invalid(field + " is empty; give a path relative to the repository root");
    }
    if (value.indexOf('\0') >= 0) {
      throw invalid(field + " contains a NUL character");
    }
    Path path;
    try {
      path = Path.of(value);
    } catch (InvalidPathException e) {
      throw invalid(field + " '" + ImageReference.printable(value) + "' is not a valid path: " + e.getReason());
    }
    if (path.isAbsolute() || value.startsWith("/") || value.startsWith("\\")) {
      throw invalid(
          field + " '" + ImageReference.printable(value) + "' is absolute; give a path relative to the repository root");
    }
    Path normalized = path.normalize();
    if (normalized.startsWith("..")) {
      throw invalid(
          field + " '" + ImageReference.printable(value) + "' leads outside the repository");
    }
    return normalized;
  }

  /**
   * Resolves both paths inside {@code sourceDir}.
   *
   * @param sourceDir the root of the checked-out tree
   * @param dockerfilePath the request's {@code dockerfile_path}
   * @param contextDir the request's {@code context_dir}
   */
  static Resolved resolve(Path sourceDir, String dockerfilePath, String contextDir)
      throws StageException {
    Path relativeDockerfile = checkRelative("dockerfile_path", dockerfilePath);
    Path relativeContext = checkRelative("context_dir", contextDir);
    Path root;
    try {
      root = sourceDir.toRealPath();
    } catch (IOException e) {
      throw new StageException(
          BuildkitErrors.SOURCE_MISSING,
          "the source directory " + sourceDir + " published by an earlier stage cannot be read: " + e,
          e);
    }

    Path context = real(root, relativeContext, "context_dir", contextDir, BuildkitErrors.CONTEXT_NOT_FOUND);
    if (!Files.isDirectory(context)) {
      throw new StageException(
          BuildkitErrors.CONTEXT_NOT_FOUND,
          "context_dir '" + contextDir + "' is not a directory in the repository");
    }
    Path dockerfile =
        real(root, relativeDockerfile, "dockerfile_path", dockerfilePath, BuildkitErrors.DOCKERFILE_NOT_FOUND);
    if (!Files.isRegularFile(dockerfile)) {
      throw new StageException(
          BuildkitErrors.DOCKERFILE_NOT_FOUND,
          "dockerfile_path '" + dockerfilePath + "' is not a file in the repository");
    }
    return new Resolved(dockerfile, context);
  }

  private static Path real(Path root, Path relative, String field, String value, BuildkitErrors notFoundCode)
      throws StageException {
    Path real;
    try {
      real = root.resolve(relative).toRealPath();
    } catch (NoSuchFileException e) {
      throw new StageException(
          notFoundCode,
          field + " '" + ImageReference.printable(value) + "' does not exist in the repository");
    } catch (IOException e) {
      throw new StageException(
          notFoundCode,
          field + " '" + ImageReference.printable(value) + "' cannot be read: " + e.getMessage());
    }
    if (!real.startsWith(root)) {
      throw invalid(
          field + " '" + ImageReference.printable(value) + "' leads outside the repository through a symbolic link");
    }
    return real;
  }

  private static StageException invalid(String message) {
    return new StageException(BuildkitErrors.INVALID_PATH, message);
  }
}

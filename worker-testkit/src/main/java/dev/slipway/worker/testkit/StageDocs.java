package dev.slipway.worker.testkit;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.StageFactory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What a plugin's tests need to hold its documentation to its declarations: the project README's
 * section of a stage, the codes its "Error codes:" line lists, and code strings written outside
 * the plugin's error enum. Plain values, so that each test asserts with its own framework.
 */
public final class StageDocs {
  private static final Pattern QUOTED = Pattern.compile("`([^`]+)`");

  private StageDocs() {}

  /** The repository's root: the nearest folder above the working directory with worker-api. */
  public static Path projectRoot() {
    Path dir = Path.of("").toAbsolutePath();
    for (Path at = dir; at != null; at = at.getParent()) {
      if (Files.isDirectory(at.resolve("worker-api")) && Files.isRegularFile(at.resolve("README.md"))) {
        return at;
      }
    }
    throw new IllegalStateException("no Slipway checkout above " + dir);
  }

  /**
   * The project README's section of a stage: from its heading "### `id`" to the next heading
   * of the same or a higher level.
   *
   * @throws IllegalStateException when the README has no such section
   */
  public static String readmeSection(String stageId) {
    String readme = read(projectRoot().resolve("README.md"));
    String heading = "\n### `" + stageId + "`";
    int start = readme.indexOf(heading);
    if (start < 0) {
      throw new IllegalStateException("README.md has no section " + heading.strip());
    }
    int end = readme.length();
    for (String next : List.of("\n### ", "\n## ")) {
      int at = readme.indexOf(next, start + 1);
      if (at >= 0 && at < end) {
        end = at;
      }
    }
    return readme.substring(start + 1, end);
  }

  /**
   * The codes of a section's "Error codes:" line, in its order: each between back-quotes, up to
   * the next blank line or the word "Details".
   *
   * @throws IllegalStateException when the section has no such line
   */
  public static List<String> listedErrorCodes(String section) {
    int at = section.indexOf("Error codes:");
    if (at < 0) {
      throw new IllegalStateException("no 'Error codes:' line in:\n" + section);
    }
    String rest = section.substring(at + "Error codes:".length());
    int end = rest.length();
    for (String stop : List.of("\n\n", "Details")) {
      int i = rest.indexOf(stop);
      if (i >= 0 && i < end) {
        end = i;
      }
    }
    List<String> codes = new ArrayList<>();
    Matcher m = QUOTED.matcher(rest.substring(0, end));
    while (m.find()) {
      codes.add(m.group(1));
    }
    return codes;
  }

  /** The codes a factory declares, in its order. */
  public static List<String> declaredErrorCodes(StageFactory factory) {
    return factory.errorCodes().stream().map(ErrorCode::code).toList();
  }

  /**
   * Every string literal {@code "<prefix>.<name>"} in the Java files under {@code sources}
   * outside the file named {@code enumFile}, as "File.java: literal": a code thrown without its
   * enum, which the factory would not declare.
   */
  public static List<String> codeLiteralsOutside(Path sources, String prefix, String enumFile) {
    Pattern literal = Pattern.compile("\"" + Pattern.quote(prefix) + "\\.[a-z0-9-]+\"");
    List<String> found = new ArrayList<>();
    try (Stream<Path> files = Files.walk(sources)) {
      for (Path file : files.filter(f -> f.toString().endsWith(".java")).sorted().toList()) {
        if (file.getFileName().toString().equals(enumFile)) {
          continue;
        }
        Matcher m = literal.matcher(read(file));
        while (m.find()) {
          found.add(file.getFileName() + ": " + m.group());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return found;
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}

package dev.slipway.plugin.git;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorCode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The published error codes: their kinds and retry hints do not change, and the README lists them. */
class GitErrorsTest {

  /** What orchestrators rely on: code, kind, and whether a retry may pass. */
  @Test
  void codesKindsAndRetryHintsAreThePublishedOnes() {
    Map<String, String> expected = new LinkedHashMap<>();
    expected.put("git.auth-failed", "INVALID_REQUEST false");
    expected.put("git.repo-not-found", "INVALID_REQUEST false");
    expected.put("git.branch-not-found", "INVALID_REQUEST false");
    expected.put("git.unreachable", "EXTERNAL true");
    expected.put("git.invalid-request", "INVALID_REQUEST false");
    expected.put("git.submodule-refused", "INVALID_REQUEST false");
    expected.put("git.clone-failed", "EXTERNAL true");
    expected.put("git.repo-too-large", "INVALID_REQUEST false");
    expected.put("git.commit-not-found", "INVALID_REQUEST false");

    Map<String, String> actual = new LinkedHashMap<>();
    for (GitErrors error : GitErrors.values()) {
      actual.put(error.code(), error.kind() + " " + error.retryable());
      assertFalse(error.description().isBlank(), error::code);
    }
    assertEquals(expected, actual);
  }

  @Test
  void theFactoryListsEveryCode() {
    List<? extends ErrorCode> listed = new GitStageFactory().errorCodes();

    assertEquals(List.of(GitErrors.values()), listed);
  }

  /** No code is spelt out in main code: every throw goes through the enum. */
  @Test
  void noCodeLiteralIsLeftInMainCode() throws Exception {
    Path main = Path.of("src/main/java");
    Pattern literal = Pattern.compile("\"git\\.[a-z-]+\"");
    List<String> found = new ArrayList<>();
    try (Stream<Path> files = Files.walk(main)) {
      for (Path file : files.filter(f -> f.toString().endsWith(".java")).toList()) {
        if (file.getFileName().toString().equals("GitErrors.java")) {
          continue;
        }
        Matcher m = literal.matcher(Files.readString(file));
        while (m.find()) {
          found.add(file.getFileName() + ": " + m.group());
        }
      }
    }
    assertEquals(List.of(), found);
  }

  /** The git section of the top README lists exactly the enum's codes, in its order. */
  @Test
  void theReadmeListsExactlyTheseCodes() throws Exception {
    String readme = Files.readString(Path.of("").toAbsolutePath().getParent().resolve("README.md"));
    int section = readme.indexOf("### `git`");
    assertTrue(section >= 0, "no git section in README.md");
    int end = readme.indexOf("\n### ", section + 1);
    String text = readme.substring(section, end < 0 ? readme.length() : end);
    int at = text.indexOf("Error codes:");
    assertTrue(at >= 0, "no Error codes line in the git section");
    String codes = text.substring(at + "Error codes:".length());
    int stop = codes.indexOf("\n\n");
    codes = stop < 0 ? codes : codes.substring(0, stop);
    int details = codes.indexOf("Details");
    codes = details < 0 ? codes : codes.substring(0, details);
    List<String> listed = new ArrayList<>();
    Matcher m = Pattern.compile("`([a-z0-9.-]+)`").matcher(codes);
    while (m.find()) {
      listed.add(m.group(1));
    }

    assertEquals(Stream.of(GitErrors.values()).map(GitErrors::code).toList(), listed);
  }
}

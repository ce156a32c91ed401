package dev.slipway.plugin.ecr;

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
class EcrErrorsTest {

  /** What orchestrators rely on: code, kind, and whether a retry may pass. */
  @Test
  void codesKindsAndRetryHintsAreThePublishedOnes() {
    Map<String, String> expected = new LinkedHashMap<>();
    expected.put("ecr.auth-failed", "CONFIGURATION false");
    expected.put("ecr.unreachable", "EXTERNAL true");
    expected.put("ecr.unavailable", "EXTERNAL true");
    expected.put("ecr.invalid-response", "EXTERNAL false");
    expected.put("ecr.failed", "EXTERNAL false");

    Map<String, String> actual = new LinkedHashMap<>();
    for (EcrErrors error : EcrErrors.values()) {
      actual.put(error.code(), error.kind() + " " + error.retryable());
      assertFalse(error.description().isBlank(), error::code);
    }
    assertEquals(expected, actual);
  }

  @Test
  void theFactoryListsEveryCode() {
    List<? extends ErrorCode> listed = new EcrStageFactory().errorCodes();

    assertEquals(List.of(EcrErrors.values()), listed);
  }

  /** No code is spelt out in main code: every throw goes through the enum. */
  @Test
  void noCodeLiteralIsLeftInMainCode() throws Exception {
    Path main = Path.of("src/main/java");
    Pattern literal = Pattern.compile("\"ecr\\.[a-z-]+\"");
    List<String> found = new ArrayList<>();
    try (Stream<Path> files = Files.walk(main)) {
      for (Path file : files.filter(f -> f.toString().endsWith(".java")).toList()) {
        if (file.getFileName().toString().equals("EcrErrors.java")) {
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

  /** The ecr section of the top README lists exactly the enum's codes, in its order. */
  @Test
  void theReadmeListsExactlyTheseCodes() throws Exception {
    String readme = Files.readString(Path.of("").toAbsolutePath().getParent().resolve("README.md"));
    int section = readme.indexOf("### `ecr`");
    assertTrue(section >= 0, "no ecr section in README.md");
    int end = readme.indexOf("\n### ", section + 1);
    String text = readme.substring(section, end < 0 ? readme.length() : end);
    int at = text.indexOf("Error codes:");
    assertTrue(at >= 0, "no Error codes line in the ecr section");
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

    assertEquals(Stream.of(EcrErrors.values()).map(EcrErrors::code).toList(), listed);
  }
}

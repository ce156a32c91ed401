package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.ErrorKind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The stage's error codes: one enum, listed by the factory, documented exactly, thrown from it. */
class ErrorCodesTest {
  private static final Path MODULE = Fixtures.HOME.resolve("plugin-buildkit");

  @Test
  void theFactoryListsEveryCodeOfTheEnum() {
    assertEquals(List.of(BuildkitErrors.values()), new BuildkitStageFactory().errorCodes());
  }

  @Test
  void codesKeepTheirPublishedStringsAndKinds() {
    Map<String, ErrorKind> codes = Arrays.stream(BuildkitErrors.values())
        .collect(Collectors.toMap(ErrorCode::code, ErrorCode::kind));
    assertEquals(Map.of(
        "build.invalid-request", ErrorKind.INVALID_REQUEST,
        "build.invalid-path", ErrorKind.INVALID_REQUEST,
        "build.dockerfile-not-found", ErrorKind.INVALID_REQUEST,
        "build.context-not-found", ErrorKind.INVALID_REQUEST,
        "build.source-missing", ErrorKind.INTERNAL,
        "build.failed", ErrorKind.EXTERNAL,
        "build.engine-unreachable", ErrorKind.EXTERNAL,
        "build.script-error", ErrorKind.INTERNAL,
        "build.tmp-failed", ErrorKind.INTERNAL,
        "build.invalid-credentials", ErrorKind.CONFIGURATION), codes);
    for (BuildkitErrors e : BuildkitErrors.values()) {
      assertFalse(e.description().isBlank(), e + " has a description");
      assertFalse(e.description().contains("\n"), e + ": one line");
    }
  }

  @Test
  void theReadmeListsExactlyTheEnumsCodes() throws IOException {
    String readme = Files.readString(Fixtures.HOME.resolve("README.md"), StandardCharsets.UTF_8);
    int start = readme.indexOf("\n### `buildkit`");
    assertTrue(start >= 0, "README.md has a ### `buildkit` section");
    int end = readme.indexOf("\n### ", start + 1);
    String section = readme.substring(start, end < 0 ? readme.length() : end);
    int codes = section.indexOf("Error codes:");
    assertTrue(codes >= 0, "the section has an Error codes: line");
    String rest = section.substring(codes + "Error codes:".length());
    int stop = rest.indexOf("\n\n");
    int details = rest.indexOf("Details");
    if (details >= 0 && (stop < 0 || details < stop)) {
      stop = details;
    }
    Matcher m = Pattern.compile("`([^`]+)`").matcher(stop < 0 ? rest : rest.substring(0, stop));
    List<String> listed = new java.util.ArrayList<>();
    while (m.find()) {
      listed.add(m.group(1));
    }
    assertEquals(Arrays.stream(BuildkitErrors.values()).map(ErrorCode::code).toList(), listed);
  }

  @Test
  void noCodeStringIsWrittenOutsideTheEnum() throws IOException {
    Pattern literal = Pattern.compile("\"build\\.[a-z-]+\"");
    try (Stream<Path> files = Files.walk(MODULE.resolve("src/main/java"))) {
      for (Path file : files.filter(f -> f.toString().endsWith(".java")).toList()) {
        if (file.getFileName().toString().equals("BuildkitErrors.java")) {
          continue;
        }
        Matcher m = literal.matcher(Files.readString(file, StandardCharsets.UTF_8));
        assertFalse(m.find(), () -> file + " writes the code " + m.group() + " itself; use BuildkitErrors");
      }
    }
  }
}

package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.testkit.StageDocs;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
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
  void theReadmeListsExactlyTheEnumsCodes() {
    assertEquals(StageDocs.declaredErrorCodes(new BuildkitStageFactory()),
        StageDocs.listedErrorCodes(StageDocs.readmeSection("buildkit")));
  }

  @Test
  void noCodeStringIsWrittenOutsideTheEnum() {
    assertEquals(List.of(), StageDocs.codeLiteralsOutside(MODULE.resolve("src/main/java"), "build",
        "BuildkitErrors.java"), "codes written outside BuildkitErrors");
  }
}

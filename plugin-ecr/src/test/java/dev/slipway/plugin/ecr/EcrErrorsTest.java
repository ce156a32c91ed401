package dev.slipway.plugin.ecr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.testkit.StageDocs;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
  void noCodeLiteralIsLeftInMainCode() {
    assertEquals(List.of(),
        StageDocs.codeLiteralsOutside(Path.of("src/main/java"), "ecr", "EcrErrors.java"));
  }

  /** The ecr section of the top README lists exactly the enum's codes, in its order. */
  @Test
  void theReadmeListsExactlyTheseCodes() {
    assertEquals(StageDocs.declaredErrorCodes(new EcrStageFactory()),
        StageDocs.listedErrorCodes(StageDocs.readmeSection("ecr")));
  }
}

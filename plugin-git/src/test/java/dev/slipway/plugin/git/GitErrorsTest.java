package dev.slipway.plugin.git;

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
  void noCodeLiteralIsLeftInMainCode() {
    assertEquals(List.of(),
        StageDocs.codeLiteralsOutside(Path.of("src/main/java"), "git", "GitErrors.java"));
  }

  /** The git section of the top README lists exactly the enum's codes, in its order. */
  @Test
  void theReadmeListsExactlyTheseCodes() {
    assertEquals(StageDocs.declaredErrorCodes(new GitStageFactory()),
        StageDocs.listedErrorCodes(StageDocs.readmeSection("git")));
  }
}

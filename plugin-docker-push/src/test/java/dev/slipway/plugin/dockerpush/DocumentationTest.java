package dev.slipway.plugin.dockerpush;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.testkit.StageDocs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What the factory declares (error codes, per-job options) against what the project's README says
 * of the stage, so that neither drifts from the other.
 */
class DocumentationTest {
  static String section() {
    return StageDocs.readmeSection("docker-push");
  }

  @Test
  void theErrorCodesLineIsTheEnumInItsOrder() {
    assertEquals(StageDocs.declaredErrorCodes(new DockerPushStageFactory()),
        StageDocs.listedErrorCodes(section()));
    assertEquals(List.of(PushErrors.values()), new DockerPushStageFactory().errorCodes());
    for (PushErrors code : PushErrors.values()) {
      assertFalse(code.description().isBlank(), code + " has a description");
    }
  }

  @Test
  void theOptionsLineNamesEveryDeclaredOption() throws Exception {
    String section = section();
    int at = section.indexOf("Options (per job, `stage_options`):");
    assertTrue(at >= 0, section);
    String line = section.substring(at, section.indexOf("\nError codes:", at));
    List<StageOption> options = new DockerPushStageFactory().options();
    assertEquals(List.of("remove-local-tags"), options.stream().map(StageOption::name).toList());
    for (StageOption option : options) {
      assertTrue(line.contains("`docker-push." + option.name() + "` (bool, default `" + option.defaultValue() + "`)"),
          line);
      assertEquals(StageOption.Type.BOOLEAN, option.type());
      assertFalse(option.isSecret());
    }
  }

  @Test
  void thePluginReadmeListsEveryErrorCode() throws Exception {
    Path readme = BuildThenPushTest.repositoryRoot().resolve("plugin-docker-push/README.md");
    String text = Files.readString(readme);
    for (PushErrors code : PushErrors.values()) {
      assertTrue(text.contains("| `" + code.code() + "` | " + code.kind().name() + " |"), code.code());
    }
  }
}

package dev.slipway.plugin.dockerpush;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.StageOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * What the factory declares (error codes, per-job options) against what the project's README says
 * of the stage, so that neither drifts from the other.
 */
class DocumentationTest {
  private static final Pattern CODE = Pattern.compile("`([a-z][a-z0-9-]*\\.[a-z0-9.-]+)`");

  static String section() throws Exception {
    String readme = Files.readString(BuildThenPushTest.repositoryRoot().resolve("README.md"));
    int start = readme.indexOf("### `docker-push`");
    assertTrue(start >= 0, "README.md has a docker-push section");
    int end = readme.indexOf("\n## ", start);
    int nextStage = readme.indexOf("\n### ", start + 1);
    if (nextStage >= 0 && (end < 0 || nextStage < end)) {
      end = nextStage;
    }
    return readme.substring(start, end < 0 ? readme.length() : end);
  }

  @Test
  void theErrorCodesLineIsTheEnumInItsOrder() throws Exception {
    String section = section();
    int at = section.indexOf("Error codes:");
    assertTrue(at >= 0, section);
    String rest = section.substring(at + "Error codes:".length());
    int blank = rest.indexOf("\n\n");
    int details = rest.indexOf("Details");
    int end = Math.min(blank < 0 ? rest.length() : blank, details < 0 ? rest.length() : details);
    List<String> listed = new ArrayList<>();
    Matcher m = CODE.matcher(rest.substring(0, end));
    while (m.find()) {
      listed.add(m.group(1));
    }
    List<String> declared = new DockerPushStageFactory().errorCodes().stream().map(ErrorCode::code).toList();
    assertEquals(declared, listed);
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

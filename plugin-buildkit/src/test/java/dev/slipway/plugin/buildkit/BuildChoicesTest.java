package dev.slipway.plugin.buildkit;

import static dev.slipway.plugin.buildkit.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.StageOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The per-job options {@code target}, {@code platform} and {@code no-cache}: declared and checked. */
class BuildChoicesTest {
  @TempDir Path tmp;

  private StageOption declared(String name) {
    return new BuildkitStageFactory().options().stream().filter(o -> o.name().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError("no option " + name + " declared"));
  }

  private BuildkitSettings settings(Map<String, Object> overrides) throws Exception {
    Map<String, Object> config = new java.util.HashMap<>(overrides);
    config.put("docker-cli", Fixtures.executable(tmp, "bin/docker", "#!/bin/sh\nexit 0\n").toString());
    return Fixtures.settings(config, Fixtures.worker(Map.of()));
  }

  @Test
  void theFactoryDeclaresTheThreeOptionsWithTheirTypes() {
    List<StageOption> options = new BuildkitStageFactory().options();
    assertEquals(List.of("target", "platform", "no-cache"), options.stream().map(StageOption::name).toList());
    assertEquals(StageOption.Type.STRING, declared("target").type());
    assertEquals(StageOption.Type.STRING, declared("platform").type());
    assertEquals(StageOption.Type.BOOLEAN, declared("no-cache").type());
    assertEquals("false", declared("no-cache").defaultValue());
    assertTrue(declared("target").defaultValue().contains("configured target"));
    assertTrue(declared("platform").defaultValue().contains("configured platform"));
    assertTrue(options.stream().noneMatch(StageOption::isSecret));
  }

  @ParameterizedTest
  @ValueSource(strings = {"runtime", "build-env", "stage.2", "2nd", "A_b-c.d"})
  void targetTakesDockerfileStageNames(String value) {
    assertEquals(Optional.empty(), declared("target").refusal(value));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "-x", "_x", ".x", "a b", "a/b", "a;b", "--target=x", "t\u00e4rget", "a\nb"})
  void targetRefusesWhatIsNoStageName(String value) {
    Optional<String> refusal = declared("target").refusal(value);
    assertTrue(refusal.isPresent(), value);
    assertTrue(refusal.get().contains("is not a Dockerfile stage name"), refusal.get());
    assertTrue(refusal.get().contains("starting with a letter or digit"), "says what would be right: " + refusal.get());
  }

  @Test
  void targetIsAtMost128Characters() {
    assertEquals(Optional.empty(), declared("target").refusal("t".repeat(128)));
    assertTrue(declared("target").refusal("t".repeat(129)).isPresent());
  }

  @ParameterizedTest
  @ValueSource(strings = {"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64", "linux/amd64,linux/arm64"})
  void platformTakesOsArchVariantAndLists(String value) {
    assertEquals(Optional.empty(), declared("platform").refusal(value));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "amd64", "linux", "linux/", "/amd64", "Linux/amd64", "linux/amd64/v8/x",
      "linux/amd64,", ",linux/amd64", "linux/amd64, linux/arm64", "linux/amd64 --push", "linux/amd64;id"})
  void platformRefusesTheRest(String value) {
    Optional<String> refusal = declared("platform").refusal(value);
    assertTrue(refusal.isPresent(), value);
    assertTrue(refusal.get().contains("linux/amd64"), "shows a right value: " + refusal.get());
  }

  @ParameterizedTest
  @ValueSource(strings = {"yes", "1", "TRUE", ""})
  void noCacheIsTrueOrFalse(String value) {
    assertEquals(Optional.of("'" + value + "' is not true or false"), declared("no-cache").refusal(value));
    assertEquals(Optional.empty(), declared("no-cache").refusal("true"));
  }

  @Test
  void optionsReplaceTheConfigurationAndAbsentOnesFallBackToIt() throws Exception {
    BuildkitSettings configured = settings(map("target", "runtime", "platform", "linux/arm64"));
    assertEquals(new BuildChoices(Optional.of("runtime"), Optional.of("linux/arm64"), false),
        BuildChoices.of(configured, StageOptions.none()));
    assertEquals(new BuildChoices(Optional.of("tests"), Optional.of("linux/amd64"), true),
        BuildChoices.of(configured, StageOptions.of(Map.of("target", "tests", "platform", "linux/amd64",
            "no-cache", "true"))));
    assertEquals(new BuildChoices(Optional.empty(), Optional.empty(), false),
        BuildChoices.of(settings(map()), StageOptions.of(Map.of("no-cache", "false"))));
  }

  @Test
  void theStageRefusesABadOptionAtAdmissionAndBeforeBuildShRuns() throws Exception {
    Path ran = tmp.resolve("build-sh-ran");
    Path script = Fixtures.executable(tmp, "build.sh", "#!/bin/sh\ntouch '" + ran + "'\n");
    BuildkitStage stage = Fixtures.stage(map("script", script.toString(),
            "docker-cli", Fixtures.executable(tmp, "docker", "#!/bin/sh\nexit 0\n").toString()),
        Fixtures.worker(Map.of()), Clock.systemUTC());
    var request = Fixtures.request("app:1", "Dockerfile", ".", Map.of());
    for (var bad : List.of(Map.of("target", "-x"), Map.of("platform", "arm64"), Map.of("no-cache", "yes"),
        // The docker backend builds one platform; the declaration alone allows a list.
        Map.of("platform", "linux/amd64,linux/arm64"))) {
      StageException e = assertThrows(StageException.class,
          () -> stage.validate(request, StageOptions.of(bad)), bad::toString);
      assertEquals("build.invalid-request", e.code());
      assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
      String name = bad.keySet().iterator().next();
      assertTrue(e.getMessage().startsWith("stage_options buildkit." + name + ": '"), e.getMessage());

      Path workspace = Files.createDirectories(tmp.resolve("ws-" + name + bad.hashCode()));
      Path source = Files.createDirectories(workspace.resolve("src"));
      Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\n");
      var job = Fixtures.job(request, workspace, source, bad);
      assertEquals("build.invalid-request", assertThrows(StageException.class, () -> stage.execute(job)).code());
      assertFalse(Files.exists(ran), "build.sh ran for " + bad);
      assertEquals(List.of(), job.leftovers(), "nothing was made for a refused job");
    }
    stage.validate(request, StageOptions.of(Map.of("target", "runtime", "platform", "linux/amd64", "no-cache", "true")));
  }
}

package dev.slipway.plugin.buildkit;

import static dev.slipway.plugin.buildkit.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Requests the stage refuses, before a build starts; no engine needed. */
class RequestValidationTest {
  @TempDir Path tmp;
  private Path workspace;
  private Path source;
  private Path buildScriptRuns;
  private BuildkitStage stage;

  @BeforeEach
  void setUp() throws Exception {
    workspace = Files.createDirectories(tmp.resolve("workspace"));
    source = Files.createDirectories(workspace.resolve("src"));
    Fixtures.write(source, "Dockerfile", "FROM local/busybox:1\n");
    Fixtures.write(source, "app/Dockerfile", "FROM local/busybox:1\n");
    buildScriptRuns = tmp.resolve("build-script-ran");
    // A build script that only notes that it ran: none of these requests may get that far.
    Path script =
        Fixtures.executable(tmp, "build.sh", "#!/bin/sh\ntouch '" + buildScriptRuns + "'\n");
    Path docker = Fixtures.executable(tmp, "docker", "#!/bin/sh\nexit 0\n");
    stage =
        Fixtures.stage(
            map("script", script.toString(), "docker-cli", docker.toString()),
            Fixtures.worker(Map.of()),
            Clock.systemUTC());
  }

  private StageException execute(String dockerfile, String context) {
    var request = Fixtures.request("app:1", dockerfile, context, Map.of());
    var job = Fixtures.job(request, workspace, source);
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));
    assertFalse(Files.exists(buildScriptRuns), "build.sh ran for a refused request");
    assertTrue(job.get(StageKeys.LOCAL_IMAGE).isEmpty());
    return e;
  }

  @ParameterizedTest
  @ValueSource(strings = {"../Dockerfile", "app/../../Dockerfile", "/etc/passwd", "/", "..", ""})
  void refusesDockerfilePathsThatLeaveTheRepository(String path) {
    var request = Fixtures.request("app:1", path, ".", Map.of());
    StageException e = assertThrows(StageException.class, () -> stage.validate(request));
    assertEquals("build.invalid-path", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().startsWith("dockerfile_path"), e.getMessage());
    assertEquals("build.invalid-path", execute(path, ".").code());
  }

  @ParameterizedTest
  @ValueSource(strings = {"..", "../..", "app/../..", "/tmp", "/"})
  void refusesContextDirsThatLeaveTheRepository(String path) {
    var request = Fixtures.request("app:1", "Dockerfile", path, Map.of());
    StageException e = assertThrows(StageException.class, () -> stage.validate(request));
    assertEquals("build.invalid-path", e.code());
    assertTrue(e.getMessage().startsWith("context_dir"), e.getMessage());
  }

  @Test
  void acceptsPathsThatStayInsideAfterNormalisation() throws Exception {
    stage.validate(Fixtures.request("app:1", "app/../app/./Dockerfile", "app/..", Map.of()));
  }

  @Test
  void refusesADockerfileSymlinkThatLeavesTheRepository() throws Exception {
    Path outside = Fixtures.write(tmp, "outside/Dockerfile", "FROM local/busybox:1\n");
    Files.createSymbolicLink(source.resolve("Linked.Dockerfile"), outside);
    StageException e = execute("Linked.Dockerfile", ".");
    assertEquals("build.invalid-path", e.code());
    assertTrue(e.getMessage().contains("symbolic link"), e.getMessage());
  }

  @Test
  void refusesAContextReachedThroughASymlinkedDirectory() throws Exception {
    Files.createDirectories(tmp.resolve("outside"));
    Files.createSymbolicLink(source.resolve("escape"), tmp.resolve("outside"));
    Fixtures.write(tmp, "outside/Dockerfile", "FROM local/busybox:1\n");
    assertEquals("build.invalid-path", execute("Dockerfile", "escape").code());
    assertEquals("build.invalid-path", execute("escape/Dockerfile", ".").code());
  }

  @Test
  void acceptsASymlinkThatStaysInside() throws Exception {
    Files.createSymbolicLink(source.resolve("Inner.Dockerfile"), source.resolve("app/Dockerfile"));
    SourcePaths.Resolved paths = SourcePaths.resolve(source, "Inner.Dockerfile", ".");
    assertEquals(source.toRealPath().resolve("app/Dockerfile"), paths.dockerfile());
  }

  @Test
  void reportsAMissingDockerfile() {
    StageException e = execute("docker/Dockerfile.missing", ".");
    assertEquals("build.dockerfile-not-found", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().contains("docker/Dockerfile.missing"), e.getMessage());
  }

  @Test
  void reportsADockerfileThatIsADirectory() {
    assertEquals("build.dockerfile-not-found", execute("app", ".").code());
  }

  @Test
  void reportsAMissingContext() {
    assertEquals("build.context-not-found", execute("Dockerfile", "no-such-dir").code());
  }

  @ParameterizedTest
  @ValueSource(strings = {"App:1", "", "app@sha256:abc", "app:1 --network=host", "-t"})
  void refusesInvalidImageNames(String image) {
    var request = Fixtures.request(image, "Dockerfile", ".", Map.of());
    StageException e = assertThrows(StageException.class, () -> stage.validate(request));
    assertEquals("build.invalid-request", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().startsWith("image_name "), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(strings = {"1ABC", "A-B", "A B", "", "A=B", "--label"})
  void refusesInvalidBuildArgNames(String name) {
    var request = Fixtures.request("app:1", "Dockerfile", ".", Map.of(name, "v"));
    StageException e = assertThrows(StageException.class, () -> stage.validate(request));
    assertEquals("build.invalid-request", e.code());
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "a b", "a,b", "a=b", "tok/en", "t\u00f6k", "..", ".", "a\nb"})
  void refusesInvalidBuildSecretKeysNamingTheKey(String key) {
    var request = Fixtures.request("app:1", "Dockerfile", ".", Map.of(), Map.of(key, "s3cr3t-value"));
    StageException e = assertThrows(StageException.class, () -> stage.validate(request));
    assertEquals("build.invalid-request", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().startsWith("build_secrets: '" + ImageReference.printable(key) + "'"), e.getMessage());
    assertFalse(e.getMessage().contains("s3cr3t-value"), "the value is never in a message");
    assertEquals("build.invalid-request", execute(request).code());
  }

  @ParameterizedTest
  @ValueSource(strings = {"tok", "NPM_TOKEN", "a.b-c_d", "...", "-", "--secret", "9"})
  void acceptsBuildSecretKeysBuildKitTakes(String key) throws Exception {
    stage.validate(Fixtures.request("app:1", "Dockerfile", ".", Map.of(), Map.of(key, "v")));
    stage.validate(Fixtures.request("app:1", "Dockerfile", ".", Map.of(), Map.of("x".repeat(128), "v")));
  }

  @Test
  void refusesABuildSecretKeyTooLongAndAValueTooBig() {
    var longKey = Fixtures.request("app:1", "Dockerfile", ".", Map.of(), Map.of("k".repeat(129), "v"));
    assertEquals("build.invalid-request", assertThrows(StageException.class, () -> stage.validate(longKey)).code());
    String big = "x".repeat(BuildSecrets.MAX_VALUE_BYTES + 1);
    var bigValue = Fixtures.request("app:1", "Dockerfile", ".", Map.of(), Map.of("tok", big));
    StageException e = assertThrows(StageException.class, () -> stage.validate(bigValue));
    assertEquals("build.invalid-request", e.code());
    assertTrue(e.getMessage().contains("'tok'") && e.getMessage().contains("at most"), e.getMessage());
  }

  private StageException execute(dev.slipway.worker.api.JobRequestView request) {
    var job = Fixtures.job(request, workspace, source);
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));
    assertFalse(Files.exists(buildScriptRuns), "build.sh ran for a refused request");
    return e;
  }

  @Test
  void refusesAJobWithoutSourceDirWithAClearCode() {
    var request = Fixtures.request("app:1", "Dockerfile", ".", Map.of());
    var recording = new dev.slipway.worker.testkit.RecordingJobContext(request, workspace);
    StageException e = assertThrows(StageException.class, () -> stage.execute(recording));
    assertEquals("worker.missing-input", e.code());
  }
}

package dev.slipway.plugin.buildkit;

import static dev.slipway.plugin.buildkit.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.LocalRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A {@code FROM} a private image of the authenticated test registry: the build pulls it with the
 * credentials an auth stage published before it, and only with them. Real engine, real registry
 * ({@code scripts/test-services.sh up}); skipped with the reason when either is missing, failed
 * instead when {@code SLIPWAY_REQUIRE_DOCKER=1}.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class PrivateBaseImageTest {
  private static final DockerEngine DOCKER = DockerEngine.fromEnvironment();
  private static final LocalRegistry REGISTRY = LocalRegistry.fromEnvironment();

  @TempDir Path tmp;
  private Path workspace;
  private final List<String> images = new ArrayList<>();

  @BeforeEach
  void services() throws IOException {
    Optional<String> missing = DOCKER.skipReason().or(REGISTRY::skipReason);
    assumeTrue(missing.isEmpty(), () -> "needs the Docker engine and the registry: " + missing.orElseThrow());
    workspace = Files.createDirectories(tmp.resolve("workspace"));
  }

  @AfterEach
  void removeImages() {
    if (!images.isEmpty()) {
      DOCKER.removeImages(images.toArray(String[]::new));
    }
  }

  private BuildkitStage stage() throws Exception {
    // The test engine has no bridge: RUN steps need network = none.
    return Fixtures.stage(map("docker-cli", DOCKER.cli().toString(), "network", "none"),
        Fixtures.worker(DOCKER.environment()), Clock.systemUTC());
  }

  private StreamingJobContext job(Path source) {
    return Fixtures.job(Fixtures.request(Fixtures.uniqueImage(), "Dockerfile", ".", Map.of()), workspace, source);
  }

  /**
   * {@code docker --config DIR ARGS}, with {@code stdin} on its standard input: the login's
   * password goes there, never into an argument.
   */
  private static DockerEngine.Result cli(Path config, String stdin, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(DOCKER.cli().toString(), "--config", config.toString()));
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    DOCKER.host().ifPresent(h -> builder.environment().put("DOCKER_HOST", h));
    Process process = builder.start();
    try (OutputStream in = process.getOutputStream()) {
      in.write(stdin.getBytes(StandardCharsets.UTF_8));
    }
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "docker " + args[0] + " finished");
    return new DockerEngine.Result(process.exitValue(), output);
  }

  /**
   * Builds an image with a marker file, pushes it to the registry as {@code ref} with a login in a
   * throwaway config, and removes it from the engine again, so that only the registry has it.
   */
  private void pushPrivateBase(String ref, String marker) throws Exception {
    Path base = Files.createDirectories(tmp.resolve("base"));
    Fixtures.write(base, "marker.txt", marker + "\n");
    Fixtures.write(base, "Dockerfile", "FROM local/busybox:1\nCOPY marker.txt /marker.txt\n");
    BuildkitStage stage = stage();
    StreamingJobContext job = job(base);
    stage.execute(job);
    String built = job.get(StageKeys.LOCAL_IMAGE).orElseThrow();
    images.add(built);
    assertTrue(DOCKER.docker("tag", built, ref).isSuccess());
    images.add(ref);
    stage.cleanup(job);

    Path login = Files.createDirectories(tmp.resolve("throwaway-docker-config"));
    try {
      DockerEngine.Result in = cli(login, REGISTRY.password(),
          "login", "--username", REGISTRY.user(), "--password-stdin", REGISTRY.address());
      assertTrue(in.isSuccess(), in.output());
      DockerEngine.Result push = cli(login, "", "push", ref);
      assertTrue(push.isSuccess(), push.output());
    } finally {
      BuildLeftovers.deleteTree(login);
    }
    assertTrue(DOCKER.docker("rmi", ref).isSuccess());
    assertFalse(DOCKER.imageExists(ref), "only the registry has the base image now");
  }

  @Test
  void aBuildFromAPrivateBaseImageUsesThePublishedCredentialsAndFailsWithoutThem() throws Exception {
    String unique = "slipway-test-" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt());
    String ref = REGISTRY.address() + "/" + unique + "/base:1";
    String marker = "private-base-" + System.nanoTime();
    pushPrivateBase(ref, marker);

    Path source = Files.createDirectories(workspace.resolve("src"));
    Fixtures.write(source, "Dockerfile", "FROM " + ref + "\n"
        + "RUN cat /marker.txt > /copied.txt\n"
        + "CMD [\"cat\", \"/copied.txt\"]\n");
    BuildkitStage stage = stage();

    // First without credentials (as when no auth stage runs before the build): the registry says 401.
    StreamingJobContext anonymous = job(source);
    StageException e = assertThrows(StageException.class, () -> stage.execute(anonymous));
    assertEquals("build.failed", e.code());
    assertTrue(e.getMessage().contains("401 Unauthorized") && e.getMessage().contains(REGISTRY.address()),
        e.getMessage());
    assertEquals(Optional.empty(), anonymous.get(BuildkitStage.DOCKER_CONFIG_DIR), "no config without credentials");
    anonymous.get(BuildkitStage.BUILT_NAME).ifPresent(images::add);
    stage.cleanup(anonymous);

    // The auth stage of pipeline [git, ecr, buildkit, docker-push] published the registry's login.
    StreamingJobContext authed = job(source);
    RegistryCredentials credentials =
        new RegistryCredentials(REGISTRY.address(), REGISTRY.user(), Secret.of(REGISTRY.password()));
    authed.publish(StageKeys.REGISTRY_CREDENTIALS, credentials);
    try {
      stage.execute(authed);
      String built = authed.get(StageKeys.LOCAL_IMAGE).orElseThrow();
      images.add(built);
      assertEquals(marker + "\n", DOCKER.runRm(built).output(), "built on the private base image");

      Path dir = authed.get(BuildkitStage.DOCKER_CONFIG_DIR).orElseThrow();
      assertTrue(dir.getFileName().toString().startsWith(BuildLeftovers.DOCKER_CONFIG_DIR_PREFIX), dir.toString());
      assertFalse(Files.exists(dir), "the private config is gone right after the build: " + dir);
      assertTrue(authed.leftovers().contains("dir " + dir), "recorded for crash recovery");
      String auth = Base64.getEncoder().encodeToString(
          (REGISTRY.user() + ":" + REGISTRY.password()).getBytes(StandardCharsets.UTF_8));
      for (String line : authed.lines()) {
        assertFalse(line.contains(REGISTRY.password()) || line.contains(auth), "the login in the log: " + line);
      }
      for (String record : authed.leftovers()) {
        assertFalse(record.contains(REGISTRY.password()) || record.contains(auth), record);
      }
      assertTrue(authed.secrets().contains(auth), "the base64 form is masked too");
    } finally {
      stage.cleanup(authed);
    }
  }
}

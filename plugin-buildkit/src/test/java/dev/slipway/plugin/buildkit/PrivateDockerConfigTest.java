package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The per-build Docker config that carries one registry's credentials to the build. */
class PrivateDockerConfigTest {
  @TempDir Path tmp;

  private static RegistryCredentials creds(String registry) {
    return new RegistryCredentials(registry, "AWS", Secret.of("pa:ss\"word\\{}"));
  }

  @Test
  void holdsOnlyTheOneRegistrysAuthInA0600FileOfA0700Directory() throws Exception {
    Path dir = tmp.resolve("slipway-dockercfg-0123456789abcdef");
    Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    try (PrivateDockerConfig config = PrivateDockerConfig.write(creds("127.0.0.1:5000"), () -> dir)) {
      assertEquals(dir, config.dir());
      Path file = dir.resolve("config.json");
      String auth = Base64.getEncoder().encodeToString("AWS:pa:ss\"word\\{}".getBytes(StandardCharsets.UTF_8));
      assertEquals("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"" + auth + "\"}}}",
          Files.readString(file, StandardCharsets.UTF_8), "JSON-safe whatever the password holds");
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
      try (var files = Files.list(dir)) {
        assertEquals(1, files.count(), "config.json alone");
      }
    }
    assertFalse(Files.exists(dir), "close removes it");
  }

  @ParameterizedTest
  @ValueSource(strings = {"docker.io", "index.docker.io", "registry-1.docker.io"})
  void dockerHubIsLookedUpUnderTheIndexUrl(String registry) {
    assertTrue(PrivateDockerConfig.json(creds(registry)).startsWith("{\"auths\":{\"https://index.docker.io/v1/\":"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"123456789012.dkr.ecr.eu-west-1.amazonaws.com", "127.0.0.1:5000", "localhost:5000",
      "registry", "[::1]:5000", "ghcr.io"})
  void acceptsRegistryHosts(String registry) {
    assertEquals(Optional.empty(), PrivateDockerConfig.problem(creds(registry)));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "https://ghcr.io", "ghcr.io/team", "ghcr.io:", "a b", "-x.io", "ghcr.io\"", "x\ny"})
  void refusesWhatIsNoRegistryHost(String registry) {
    Optional<String> problem = PrivateDockerConfig.problem(creds(registry));
    assertTrue(problem.isPresent(), registry);
    assertTrue(problem.get().contains("host[:port]"), problem.get());
    assertFalse(problem.get().contains("pa:ss"), "never the password");
  }

  @Test
  void aFailedWriteLeavesNothing() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("slipway-dockercfg-fedcba9876543210"));
    Files.writeString(dir.resolve("config.json"), "someone's"); // CREATE_NEW refuses to write over it
    StageException e = assertThrows(StageException.class, () -> PrivateDockerConfig.write(creds("ghcr.io"), () -> dir));
    assertEquals("build.tmp-failed", e.code());
    assertFalse(e.getMessage().contains("pa:ss"), e.getMessage());
    assertFalse(Files.exists(dir));
  }
}

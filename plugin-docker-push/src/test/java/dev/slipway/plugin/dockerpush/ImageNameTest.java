package dev.slipway.plugin.dockerpush;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class ImageNameTest {

  @ParameterizedTest
  @CsvSource({
    "app,                                  , app,              ",
    "team/app:1.2,                         , team/app,         1.2",
    "team/sub/app:v1_x-y,                  , team/sub/app,     v1_x-y",
    "localhost/app,                        localhost, app,     ",
    "localhost:5000/team/app:latest,       localhost:5000, team/app, latest",
    "127.0.0.1:5000/app:7,                 127.0.0.1:5000, app, 7",
    "registry.example.com/team/app,        registry.example.com, team/app, ",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1, 123456789012.dkr.ecr.eu-west-1.amazonaws.com, app, 1",
    "Registry/app:1,                       Registry, app,     1",
    "[::1]:5000/app,                       '[::1]:5000', app,   ",
    "a.b-c--d.example/e__f.g:1,            a.b-c--d.example, e__f.g, 1",
  })
  void splitsRegistryRepositoryAndTagAsDockerDoes(String input, String registry, String repository, String tag) {
    ImageName name = ImageName.parse(input);
    assertEquals(Optional.ofNullable(registry), name.registry());
    assertEquals(repository, name.repository());
    assertEquals(Optional.ofNullable(tag), name.tag());
  }

  @Test
  void defaultsTheTagToLatestAndPrependsTheRegistry() {
    assertEquals("r.example.com/team/app:latest", ImageName.parse("team/app").in("r.example.com").reference());
    assertEquals("r.example.com/team/app:2", ImageName.parse("team/app:2").in("r.example.com").reference());
    assertEquals("r.example.com/team/app", ImageName.parse("team/app:2").in("r.example.com").name());
  }

  @ParameterizedTest
  @ValueSource(strings = {
    "", " ", "team/App:1", "Team/App", "team//app", "team/app:", "team/app:-1", "team/app:.1",
    "team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    "-team/app", "team/app-", "bad_host.example.com:99999999/app", "team/app:1:2"
  })
  void refusesWhatDockerWouldRefuse(String input) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageName.parse(input));
    assertTrue(e.getMessage().contains("image_name"), e.getMessage());
  }

  @Test
  void aDigestIsRefusedWithAReason() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ImageName.parse("team/app@sha256:" + "0".repeat(64)));
    assertTrue(e.getMessage().contains("the registry assigns the digest"), e.getMessage());
  }

  @Test
  void comparesRegistriesCanonically() {
    assertEquals("docker.io", ImageName.canonicalRegistry("index.docker.io"));
    assertEquals("docker.io", ImageName.canonicalRegistry("registry-1.docker.io"));
    assertEquals("1234.dkr.ecr.eu-west-1.amazonaws.com",
        ImageName.canonicalRegistry("https://1234.dkr.ecr.eu-west-1.amazonaws.com/"));
    assertEquals("registry.example.com:5000", ImageName.canonicalRegistry("Registry.Example.com:5000"));
  }
}

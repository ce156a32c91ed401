package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ImageReferenceTest {

  @ParameterizedTest
  @ValueSource(
      strings = {
        "app",
        "app:1.2",
        "team/app:latest",
        "a__b/c-d/e.f_g:V1_2-rc.3",
        "localhost/app",
        "localhost:5000/team/app:1",
        "Registry.Example.com:443/team/app:1",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:sha-3f78685",
        "127.0.0.1:5000/app"
      })
  void acceptsDockerReferences(String reference) {
    assertTrue(ImageReference.isValid(reference), () -> ImageReference.problem(reference).orElse(""));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        " ",
        "App:1",
        "Team/app",
        "app:",
        ":1",
        "app:-1",
        "app:.1",
        "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "app/",
        "/app",
        "app//x",
        "app_:1",
        "-app",
        "app:1 ; rm -rf /",
        "--output=type=local,dest=/",
        "app\n:1",
        "registry.example.com:port/app"
      })
  void refusesWhatDockerWouldRefuse(String reference) {
    assertFalse(ImageReference.isValid(reference), reference);
  }

  @org.junit.jupiter.api.Test
  void refusesOverlongNamesAndTags() {
    assertFalse(ImageReference.isValid("a".repeat(256)));
    assertTrue(ImageReference.isValid("a".repeat(255)));
    assertTrue(ImageReference.isValid("app:" + "t".repeat(128)));
    assertFalse(ImageReference.isValid("app:" + "t".repeat(129)));
  }
}

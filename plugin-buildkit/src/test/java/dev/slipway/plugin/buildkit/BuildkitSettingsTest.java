package dev.slipway.plugin.buildkit;

import static dev.slipway.plugin.buildkit.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.StageConfigException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BuildkitSettingsTest {
  @TempDir Path tmp;

  private Path fakeDocker() {
    return Fixtures.executable(tmp, "bin/docker", "#!/bin/sh\nexit 0\n");
  }

  @Test
  void referenceConfDefaultsMakeAWorkingStage() throws Exception {
    var worker = Fixtures.worker(Map.of());
    // Only docker-cli changes: the default /usr/bin/docker may be missing where tests run.
    var stage =
        new BuildkitStageFactory()
            .create(Fixtures.config(map("docker-cli", fakeDocker().toString())), worker);
    assertInstanceOf(BuildkitStage.class, stage);

    BuildkitSettings s = Fixtures.settings(map("docker-cli", fakeDocker().toString()), worker);
    assertEquals(Fixtures.HOME.resolve("scripts/build.sh"), s.script());
    assertEquals(BuildkitSettings.Backend.DOCKER, s.backend());
    assertEquals(BuildkitSettings.Network.DEFAULT, s.network(), "host only when configured");
    assertEquals(Optional.empty(), s.dockerHost());
    assertEquals(Optional.empty(), s.addr());
    assertTrue(s.tls().isEmpty());
    assertEquals(List.of(), s.cacheImports());
    assertEquals(Optional.empty(), s.cacheExport());
    assertEquals(Map.of(), s.labels());
    assertEquals(List.of(), s.warnings(), "the defaults need no warning");
  }

  @Test
  void hostNetworkIsAllowedWithAWarningThatSaysWhatBuildsCanThenReach() throws Exception {
    BuildkitSettings host = Fixtures.settings(map("docker-cli", fakeDocker().toString(), "network", "host"),
        Fixtures.worker(Map.of()));
    assertEquals(BuildkitSettings.Network.HOST, host.network());
    assertEquals(1, host.warnings().size(), host.warnings().toString());
    String warning = host.warnings().get(0);
    for (String reach : List.of("network = host", "loopback", "gRPC", "metrics", "registry", "instance metadata",
        "169.254.169.254", "network = default", "none")) {
      assertTrue(warning.contains(reach), "the warning names '" + reach + "': " + warning);
    }
    for (String quiet : List.of("none", "default")) {
      BuildkitSettings s = Fixtures.settings(map("docker-cli", fakeDocker().toString(), "network", quiet),
          Fixtures.worker(Map.of()));
      assertEquals(List.of(), s.warnings(), quiet);
    }
  }

  @Test
  void removeImageFalseStillStartsButSaysItIsIgnored() throws Exception {
    BuildkitSettings s = Fixtures.settings(map("docker-cli", fakeDocker().toString(), "remove-image", false),
        Fixtures.worker(Map.of()));
    assertEquals(1, s.warnings().size(), s.warnings().toString());
    assertTrue(s.warnings().get(0).contains("remove-image = false is ignored"), s.warnings().get(0));
    assertTrue(s.warnings().get(0).contains("slipway.local/"), s.warnings().get(0));
  }

  @Test
  void everyKeyOfTheReferenceIsCommented() throws Exception {
    String text =
        new String(
            BuildkitStageFactory.class.getModule().getResourceAsStream("reference.conf").readAllBytes(),
            java.nio.charset.StandardCharsets.UTF_8);
    var block = ConfigFactory.parseString(text).getConfig("worker.stages.buildkit");
    for (var entry : block.entrySet()) {
      var comments = entry.getValue().origin().comments();
      // A key inside an object (tls.cert) may carry its own comment; the object's comment counts too.
      String parent = entry.getKey().contains(".") ? entry.getKey().substring(0, entry.getKey().indexOf('.')) : null;
      boolean commented =
          !comments.isEmpty()
              || (parent != null && !block.getValue(parent).origin().comments().isEmpty());
      assertTrue(commented, entry.getKey() + " has no comment in reference.conf");
    }
  }

  @Test
  void readsEveryKey() throws Exception {
    Path ca = Fixtures.write(tmp, "tls/ca.pem", "ca");
    Path cert = Fixtures.write(tmp, "tls/cert.pem", "cert");
    Path key = Fixtures.write(tmp, "tls/key.pem", "key");
    BuildkitSettings s =
        Fixtures.settings(
            map(
                "backend", "buildctl",
                "docker-cli", fakeDocker().toString(),
                "docker-host", "unix:///run/other.sock",
                "addr", "tcp://buildkitd:1234",
                "tls", map("ca-cert", ca.toString(), "cert", cert.toString(), "key", key.toString()),
                "cache", map("import", List.of("registry.example.com/cache/app:bc"), "export", "registry.example.com/cache/app:bc"),
                "network", "none",
                "target", "runtime",
                "platform", "linux/arm64/v8,linux/amd64",
                "labels", map("\"org.example.team\"", "builds", "org.example.nested", "yes")),
            Fixtures.worker(Map.of()));
    assertEquals(BuildkitSettings.Backend.BUILDCTL, s.backend());
    assertEquals(Optional.of("unix:///run/other.sock"), s.dockerHost());
    assertEquals(Optional.of("tcp://buildkitd:1234"), s.addr());
    assertEquals(new BuildkitSettings.Tls(Optional.of(ca), Optional.of(cert), Optional.of(key)), s.tls());
    assertEquals(List.of("registry.example.com/cache/app:bc"), s.cacheImports());
    assertEquals(Optional.of("registry.example.com/cache/app:bc"), s.cacheExport());
    assertEquals(BuildkitSettings.Network.NONE, s.network());
    assertEquals(Optional.of("runtime"), s.target());
    assertEquals(Optional.of("linux/arm64/v8,linux/amd64"), s.platform(), "buildctl builds a list");
    assertEquals(Map.of("org.example.team", "builds", "org.example.nested", "yes"), s.labels());
  }

  @Test
  void reportsEveryProblemAtOnceNamingTheKeys() {
    var e =
        assertThrows(
            StageConfigException.class,
            () ->
                new BuildkitStageFactory()
                    .create(
                        Fixtures.config(
                            map(
                                "script", "scripts/no-such-build.sh",
                                "backend", "dockr",
                                "docker-cli", "/nonexistent/docker",
                                "docker-host", "localhost:2375",
                                "addr", "buildkitd:1234",
                                "tls", map("cert", tmp.resolve("missing.pem").toString()),
                                "cache", map("import", List.of("Not A Ref"), "export", "registry.example.com/c:1"),
                                "network", "bridge",
                                "target", "-x",
                                "platform", "arm64",
                                "labels", map("\"org.opencontainers.image.revision\"", "x", "\"bad key\"", "y"))),
                        Fixtures.worker(Map.of())));
    List<String> problems = e.problems();
    List<String> expectedPrefixes =
        List.of(
            "script: " + Fixtures.HOME.resolve("scripts/no-such-build.sh") + " does not exist",
            "backend: 'dockr' is not one of [docker, buildctl]",
            "docker-cli: /nonexistent/docker does not exist",
            "docker-host: 'localhost:2375' is not a Docker host",
            "addr: 'buildkitd:1234' is not a buildkitd address",
            "tls.cert: " + tmp.resolve("missing.pem") + " does not exist",
            "tls: cert and key go together",
            "cache.import: 'Not A Ref'",
            "network: 'bridge' is not one of [default, host, none]",
            "target: '-x' is not a Dockerfile stage name",
            "platform: 'arm64' is not a platform os/arch[/variant]",
            "labels.org.opencontainers.image.revision: is set by the stage",
            "labels.bad key: is not a valid label key");
    for (String prefix : expectedPrefixes) {
      assertTrue(
          problems.stream().anyMatch(p -> p.startsWith(prefix)),
          () -> "no problem starting with '" + prefix + "' in:\n" + String.join("\n", problems));
    }
    // With the unknown backend the stage assumes docker, so buildctl-only keys are problems too.
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("addr: ")));
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("cache.export: only the buildctl backend")));
    // Unknown keys and timeout are the runtime's to check now: this reader does not look at them.
    assertTrue(problems.stream().noneMatch(p -> p.startsWith("timeout") || p.contains("unknown key")),
        String.join("\n", problems));
  }

  @Test
  void leavesUnknownKeysAndTheTimeoutToTheRuntime() throws Exception {
    // The runtime refuses keys reference.conf lacks and checks timeout before a plugin sees the
    // block; whatever reaches the plugin, it reads only its own keys.
    BuildkitSettings s = Fixtures.settings(
        map("docker-cli", fakeDocker().toString(), "timeout", "0s"), Fixtures.worker(Map.of()));
    assertEquals(BuildkitSettings.Backend.DOCKER, s.backend());
  }

  @Test
  void theDockerBackendRefusesAListOfPlatforms() {
    var e = assertThrows(StageConfigException.class, () -> Fixtures.settings(
        map("docker-cli", fakeDocker().toString(), "platform", "linux/amd64,linux/arm64"),
        Fixtures.worker(Map.of())));
    assertEquals(1, e.problems().size(), e.getMessage());
    assertTrue(e.problems().get(0).startsWith("platform: 'linux/amd64,linux/arm64' is a list"), e.getMessage());
    assertTrue(e.problems().get(0).contains("backend = buildctl"), e.getMessage());
  }

  @Test
  void targetsAreDockerfileStageNames() throws Exception {
    for (String ok : List.of("runtime", "build-env", "stage.2", "2nd", "a_b", "x".repeat(128))) {
      assertEquals(Optional.of(ok), Fixtures.settings(map("docker-cli", fakeDocker().toString(), "target", ok),
          Fixtures.worker(Map.of())).target());
    }
    for (String bad : List.of("_x", ".x", "a b", "a/b", "x".repeat(129), "a;b")) {
      var e = assertThrows(StageConfigException.class, () -> Fixtures.settings(
          map("docker-cli", fakeDocker().toString(), "target", bad), Fixtures.worker(Map.of())), bad);
      assertTrue(e.problems().get(0).startsWith("target: '" + bad + "' is not a Dockerfile stage name"),
          e.getMessage());
    }
  }

  @Test
  void refusesBuildctlOnlyKeysWithTheDockerBackend() {
    var e =
        assertThrows(
            StageConfigException.class,
            () ->
                Fixtures.settings(
                    map(
                        "docker-cli", fakeDocker().toString(),
                        "addr", "tcp://buildkitd:1234",
                        "cache", map("export", "registry.example.com/cache:1"),
                        "tls", map("ca-cert", Fixtures.write(tmp, "ca.pem", "x").toString())),
                    Fixtures.worker(Map.of())));
    assertEquals(3, e.problems().size(), e.getMessage());
    assertTrue(e.problems().stream().allMatch(p -> p.contains("only the buildctl backend uses it")), e.getMessage());
  }

  @Test
  void resolvesRelativePathsAgainstTheWorkersHome() throws Exception {
    Path home = tmp.resolve("home");
    Fixtures.executable(home, "bin/build.sh", "#!/bin/sh\n");
    Fixtures.executable(home, "bin/docker", "#!/bin/sh\n");
    var worker = new Fixtures.Worker(home, Map.of());
    BuildkitSettings s = Fixtures.settings(map("script", "bin/build.sh", "docker-cli", "bin/docker"), worker);
    assertEquals(home.resolve("bin/build.sh"), s.script());
    assertEquals(home.resolve("bin/docker"), s.dockerCli());
  }
}

package dev.slipway.plugin.dockerpush;

import static dev.slipway.plugin.dockerpush.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DockerPushSettingsTest {
  @TempDir Path tmp;

  @Test
  void referenceConfDefaultsMakeAWorkingStage() throws Exception {
    try (Stage stage = new DockerPushStageFactory().create(Fixtures.config(Map.of()), Fixtures.worker(Map.of()))) {
      assertInstanceOf(DockerPushStage.class, stage);
    }
    DockerPushSettings s = Fixtures.settings(Map.of());
    assertEquals("unix:///var/run/docker.sock", s.engine().host());
    assertEquals(Optional.empty(), s.registry());
    assertEquals(Optional.empty(), s.auth());
    assertEquals(Set.of(), s.insecureRegistries());
    assertEquals(Set.of(), s.tokenRealmHosts(), "no token service besides the registry's own host by default");
    assertEquals(new DockerPushSettings.Retry(3, Duration.ofSeconds(1), Duration.ofSeconds(10)), s.retry());
    assertEquals(Duration.ofMillis(500), s.progressInterval());
    assertTrue(s.removeLocalTags());
    assertEquals(Duration.ofSeconds(30), s.registryTimeout());
    assertEquals(List.of(), s.warnings());
  }

  @Test
  void everyKeyOfTheReferenceIsCommented() throws Exception {
    String text = new String(
        DockerPushStageFactory.class.getModule().getResourceAsStream("reference.conf").readAllBytes(),
        StandardCharsets.UTF_8);
    var block = ConfigFactory.parseString(text).getConfig("worker.stages.docker-push");
    assertEquals(
        Set.of("timeout", "docker-host", "registry", "auth.username", "auth.password", "insecure-registries",
            "token-realm-hosts", "retry.max-attempts", "retry.initial-backoff", "retry.max-backoff", "progress-interval",
            "remove-local-tags", "registry-timeout", "digest-check"),
        block.entrySet().stream().map(Map.Entry::getKey).collect(java.util.stream.Collectors.toSet()));
    for (var entry : block.entrySet()) {
      assertFalse(entry.getValue().origin().comments().isEmpty(), entry.getKey() + " has no comment in reference.conf");
    }
  }

  @Test
  void readsEveryKey() throws Exception {
    DockerPushSettings s = Fixtures.settings(map(
        "timeout", "5m",
        "docker-host", "tcp://127.0.0.1:2375",
        "registry", "registry.example.com:8443",
        "auth", map("username", "ci", "password", " pass word "),
        "insecure-registries", List.of("Registry.Internal:5000", "10.1.2.3"),
        "token-realm-hosts", List.of("Auth.Docker.io", " gitlab.com "),
        "retry", map("max-attempts", 5, "initial-backoff", "200ms", "max-backoff", "2s"),
        "progress-interval", "1s",
        "remove-local-tags", false,
        "registry-timeout", "5s"));
    assertEquals(new DockerPushSettings.Engine("tcp://127.0.0.1:2375", "docker-host", Optional.empty()), s.engine());
    assertEquals(Optional.of("registry.example.com:8443"), s.registry());
    assertEquals("ci", s.auth().orElseThrow().username());
    assertEquals(" pass word ", s.auth().orElseThrow().password().reveal(), "a password is taken as it is");
    assertEquals(Set.of("registry.internal:5000", "10.1.2.3"), s.insecureRegistries());
    assertEquals(Set.of("auth.docker.io", "gitlab.com"), s.tokenRealmHosts());
    assertEquals(new DockerPushSettings.Retry(5, Duration.ofMillis(200), Duration.ofSeconds(2)), s.retry());
    assertEquals(Duration.ofSeconds(1), s.progressInterval());
    assertFalse(s.removeLocalTags());
    assertEquals(1, s.warnings().size(), s.warnings().toString());
    assertTrue(s.warnings().get(0).startsWith("worker.stages.docker-push.remove-local-tags = false is ignored")
        && s.warnings().get(0).contains("per-job option docker-push.remove-local-tags=false"), s.warnings().get(0));
    assertEquals(Duration.ofSeconds(5), s.registryTimeout());
  }

  @Test
  void theEngineComesFromDockerHostWhenNotConfigured() throws Exception {
    DockerPushSettings s = DockerPushSettings.from(Fixtures.config(Map.of()),
        Fixtures.worker(Map.of("DOCKER_HOST", "unix:///tmp/slipway-services/docker/docker.sock")));
    assertEquals("unix:///tmp/slipway-services/docker/docker.sock", s.engine().host());
    assertEquals("DOCKER_HOST", s.engine().origin());

    StageConfigException e = assertThrows(StageConfigException.class, () -> DockerPushSettings.from(
        Fixtures.config(Map.of()), Fixtures.worker(Map.of("DOCKER_HOST", "ssh://builder@host"))));
    assertTrue(e.getMessage().contains("from the worker's DOCKER_HOST"), e.getMessage());
  }

  @Test
  void tlsComesFromTheWorkersEnvironmentForTcpEngines() throws Exception {
    for (String f : List.of("ca.pem", "cert.pem", "key.pem")) {
      Files.writeString(tmp.resolve(f), "x");
    }
    DockerPushSettings s = DockerPushSettings.from(Fixtures.config(map("docker-host", "tcp://127.0.0.1:2376")),
        Fixtures.worker(Map.of("DOCKER_TLS_VERIFY", "1", "DOCKER_CERT_PATH", tmp.toString())));
    assertEquals(Optional.of(tmp), s.engine().tlsCertPath());

    StageConfigException e = assertThrows(StageConfigException.class, () -> DockerPushSettings.from(
        Fixtures.config(map("docker-host", "tcp://127.0.0.1:2376")),
        Fixtures.worker(Map.of("DOCKER_TLS_VERIFY", "1", "DOCKER_CERT_PATH", tmp.resolve("none").toString()))));
    assertEquals(3, e.problems().size(), e.problems().toString());
  }

  @Test
  void reportsEveryProblemAtOnceEachNamingItsKey() {
    // Unknown keys and timeout are the runtime's to refuse; every other check is the stage's.
    StageConfigException e = assertThrows(StageConfigException.class, () -> Fixtures.settings(map(
        "docker-host", "http://127.0.0.1:2375",
        "registry", "https://registry.example.com/v2",
        "auth", map("username", "ci", "password", ""),
        "insecure-registries", List.of("not a host"),
        "token-realm-hosts", List.of("https://auth.docker.io/token"),
        "retry", map("max-attempts", 0, "initial-backoff", "5s", "max-backoff", "1s"),
        "progress-interval", "10ms",
        "remove-local-tags", "perhaps",
        "registry-timeout", "100ms")));
    List<String> problems = e.problems();
    for (String key : List.of("docker-host:", "registry:", "auth.password:", "insecure-registries:",
        "token-realm-hosts:", "retry.max-attempts:", "retry.max-backoff:", "progress-interval:", "remove-local-tags:",
        "registry-timeout:")) {
      assertTrue(problems.stream().anyMatch(p -> p.startsWith(key)), key + " missing from " + problems);
    }
    assertEquals(10, problems.size(), problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.contains("give the host[:port] alone, e.g. 'registry.example.com'")),
        problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.contains("${?REGISTRY_PASSWORD}")), problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("token-realm-hosts:")
        && p.contains("give the host alone, without scheme, port or path, e.g. 'auth.docker.io'")), problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("retry.max-attempts:") && p.contains("use 1 to 20")),
        problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("progress-interval:") && p.contains("at least 100ms")),
        problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("retry.max-backoff:")
        && p.contains("(1s) must not be shorter than retry.initial-backoff (5s)")), problems.toString());
  }

  @Test
  void neitherTimeoutNorUnknownKeysAreTheStagesToCheck() throws Exception {
    // The runtime refuses them before the stage is created; the stage reads what it knows.
    Fixtures.settings(map("timeout", "0s", "colour", "blue", "auth", map("token", "x")));
  }

  @Test
  void staticAuthWithoutRegistryIsAProblemListedWithTheOthers() throws Exception {
    StageConfigException e = assertThrows(StageConfigException.class, () -> Fixtures.settings(map(
        "auth", map("username", "ci", "password", "hunter2-secret"),
        "progress-interval", "10ms")));
    List<String> problems = e.problems();
    assertEquals(2, problems.size(), problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("progress-interval:")), problems.toString());
    String auth = problems.stream().filter(p -> p.startsWith("auth:")).findFirst().orElseThrow();
    assertTrue(auth.contains("registry is not") && auth.contains("set registry to the host they belong to")
        && auth.contains("registry = \"registry.example.com\""), auth);
    assertFalse(e.getMessage().contains("hunter2-secret"), e.getMessage());

    // Half an auth block without registry: both problems, still together.
    StageConfigException half = assertThrows(StageConfigException.class,
        () -> Fixtures.settings(map("auth", map("username", "ci"))));
    assertEquals(2, half.problems().size(), half.problems().toString());

    Fixtures.settings(map("registry", "registry.example.com", "auth", map("username", "ci", "password", "x")));
    assertThrows(IllegalArgumentException.class, () -> new DockerPushSettings(
        new DockerPushSettings.Engine("unix:///x", "test", Optional.empty()), Optional.empty(),
        Optional.of(new DockerPushSettings.StaticAuth("ci", Secret.of("x"))), Set.of(), Set.of(),
        new DockerPushSettings.Retry(1, Duration.ofSeconds(1), Duration.ofSeconds(1)), Duration.ofSeconds(1), true,
        Duration.ofSeconds(1), DockerPushSettings.DigestSource.PUSH), "the record keeps the rule too");
  }

  @Test
  void aPasswordWithoutUserIsAProblemAndThePasswordNeverPrints() {
    StageConfigException e = assertThrows(StageConfigException.class,
        () -> Fixtures.settings(map("registry", "registry.example.com", "auth", map("password", "hunter2-secret"))));
    assertEquals(1, e.problems().size());
    assertTrue(e.problems().get(0).startsWith("auth.username:"), e.problems().toString());
    assertFalse(e.getMessage().contains("hunter2-secret"));
  }

  @Test
  void backoffDoublesUpToTheMaximum() {
    var retry = new DockerPushSettings.Retry(6, Duration.ofSeconds(1), Duration.ofSeconds(5));
    assertEquals(Duration.ofSeconds(1), retry.backoffBefore(2));
    assertEquals(Duration.ofSeconds(2), retry.backoffBefore(3));
    assertEquals(Duration.ofSeconds(4), retry.backoffBefore(4));
    assertEquals(Duration.ofSeconds(5), retry.backoffBefore(5));
    assertEquals(Duration.ofSeconds(5), retry.backoffBefore(6));
  }
}

package dev.slipway.plugin.git;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.ServiceLoader;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The stage's configuration: shipped defaults, and every problem reported at once. */
class GitSettingsTest {

  @Test
  void referenceConfHoldsTheDocumentedDefaults() throws Exception {
    GitSettings settings = GitTestSupport.settings(GitTestSupport.reference());

    assertEquals(1, settings.depth());
    assertFalse(settings.submodules());
    assertEquals(List.of("https"), settings.allowedSchemes());
    assertEquals(Duration.ofSeconds(30), settings.connectTimeout());
    assertEquals(Duration.ofMillis(500), settings.progressInterval());
    assertEquals(2L * 1024 * 1024 * 1024, settings.maxCheckoutSize());
    assertTrue(settings.cache().enabled());
    assertEquals(Path.of("").toAbsolutePath().resolve("tmp/git-cache"), settings.cache().dir());
    assertEquals(10L * 1024 * 1024 * 1024, settings.cache().maxSize());
    assertEquals(Duration.ofMinutes(5), settings.cache().lockTimeout());
    assertTrue(settings.cache().readyCheckouts());
  }

  @Test
  void readsTheCacheBlock() throws Exception {
    GitSettings settings = GitTestSupport.settings(GitTestSupport.config(
        "cache { enabled = false, dir = \"/var/cache/slipway-git\", max-size = 512MiB,"
            + " lock-timeout = 0s, ready-checkouts = false }"));

    assertFalse(settings.cache().enabled());
    assertEquals(Path.of("/var/cache/slipway-git"), settings.cache().dir());
    assertEquals(512L * 1024 * 1024, settings.cache().maxSize());
    assertEquals(Duration.ZERO, settings.cache().lockTimeout());
    assertFalse(settings.cache().readyCheckouts());
    // Relative to the working directory, as worker.workspace-root is.
    assertEquals(Path.of("").toAbsolutePath().resolve("var/mirrors"),
        GitTestSupport.settings(GitTestSupport.config("cache.dir = var/mirrors")).cache().dir());
  }

  @Test
  void badCacheSettingsAreProblems() {
    StageConfigException e = assertThrows(StageConfigException.class,
        () -> GitTestSupport.settings(GitTestSupport.config(
            "cache { enabled = maybe, max-size = 0, lock-timeout = -1s }")));

    assertEquals(3, e.problems().size(), e.problems()::toString);
    assertContains(e.problems(), "cache.enabled: expected true or false");
    assertContains(e.problems(), "cache.max-size: 0 bytes is not allowed");
    assertContains(e.problems(), "cache.lock-timeout: ");
  }

  @Test
  void aCacheDirectoryThatCannotBeMadeStopsStartUp() throws Exception {
    Path file = Files.createTempFile("not-a-directory-", ".txt");
    try {
      StageConfigException e = assertThrows(StageConfigException.class,
          () -> GitTestSupport.stage("cache.dir = \"" + file.resolve("cache") + "\""));

      assertEquals(1, e.problems().size(), e.problems()::toString);
      assertTrue(e.problems().get(0).startsWith("cache.dir: cannot keep the git cache in "
          + file.resolve("cache")), e.problems()::toString);
      assertTrue(e.problems().get(0).contains("or set cache.enabled = false"),
          e.problems()::toString);
      // Off, it is never made, and nothing is refused.
      GitTestSupport.stage("cache { enabled = false, dir = \"" + file.resolve("cache") + "\" }");
    } finally {
      Files.delete(file);
    }
  }

  @Test
  void everyKeyInReferenceConfIsCommented() throws Exception {
    Path conf = Path.of(GitStageFactory.class.getResource("/reference.conf").toURI());
    List<String> lines = Files.readAllLines(conf);
    Set<String> keys = GitTestSupport.reference().root().keySet();
    assertEquals(
        Set.of("timeout", "depth", "submodules", "allowed-schemes", "connect-timeout",
            "progress-interval", "max-checkout-size", "cache"),
        keys);
    assertEquals(Set.of("enabled", "dir", "max-size", "lock-timeout", "ready-checkouts"),
        GitTestSupport.reference().getConfig("cache").root().keySet());
    List<String> all = new java.util.ArrayList<>(keys);
    all.remove("cache");
    all.add("cache {");
    all.addAll(GitTestSupport.reference().getConfig("cache").root().keySet());
    for (String key : all) {
      key = key.replace(" {", "");
      int at = -1;
      for (int i = 0; i < lines.size(); i++) {
        if (lines.get(i).trim().startsWith(key + " =")
            || lines.get(i).trim().startsWith(key + " {")) {
          at = i;
        }
      }
      assertTrue(at > 0, key + " missing from reference.conf");
      assertTrue(lines.get(at - 1).trim().startsWith("#"), key + " has no comment above it");
    }
  }

  @Test
  void readsOverrides() throws Exception {
    GitSettings settings =
        GitTestSupport.settings(
            GitTestSupport.config(
                "depth = 0, submodules = true, allowed-schemes = [HTTPS, http],"
                    + " connect-timeout = 1500ms, progress-interval = 2s, timeout = 1h,"
                    + " max-checkout-size = 500MiB"));

    assertEquals(0, settings.depth());
    assertTrue(settings.submodules());
    assertEquals(List.of("https", "http"), settings.allowedSchemes());
    assertEquals(Duration.ofMillis(1500), settings.connectTimeout());
    assertEquals(Duration.ofSeconds(2), settings.progressInterval());
    assertEquals(500L * 1024 * 1024, settings.maxCheckoutSize());
    assertEquals(1500L, GitTestSupport.settings(GitTestSupport.config("max-checkout-size = 1500")).maxCheckoutSize());
    assertEquals(
        3L * 1024 * 1024 * 1024 * 1024,
        GitTestSupport.settings(GitTestSupport.config("max-checkout-size = 3T")).maxCheckoutSize());
  }

  @ParameterizedTest
  @ValueSource(strings = {"0", "0B", "0GiB", "-1", "-5MiB", "lots", "2 gigs", "[2GiB]", "{}", "\"\""})
  void maxCheckoutSizeMustBeASizeOfMoreThanZero(String value) {
    Config bad =
        ConfigFactory.parseString("max-checkout-size = " + value).withFallback(GitTestSupport.reference());

    StageConfigException e =
        assertThrows(
            StageConfigException.class,
            () -> new GitStageFactory().create(bad, GitTestSupport.environment()));

    assertEquals(1, e.problems().size(), e.problems()::toString);
    String problem = e.problems().get(0);
    assertTrue(problem.startsWith("max-checkout-size: "), problem);
    // A size of 0 gets the advice; what Typesafe cannot read as a size (a negative one too),
    // Typesafe's message, which names the file, the line and the key.
    if (value.startsWith("0")) {
      assertEquals(
          "max-checkout-size: 0 is not allowed; use a size of more than 0 bytes, e.g. 2GiB", problem);
    } else {
      assertTrue(problem.contains("'max-checkout-size'") || problem.contains(" max-checkout-size "),
          problem);
    }
  }

  @Test
  void reportsEveryProblemAtOnceNamingEachKey() {
    Config bad =
        ConfigFactory.parseString(
                "depth = -1, submodules = maybe, allowed-schemes = [ssh, https],"
                    + " connect-timeout = 50ms, progress-interval = 10ms")
            .withFallback(GitTestSupport.reference());

    StageConfigException e =
        assertThrows(
            StageConfigException.class,
            () -> new GitStageFactory().create(bad, GitTestSupport.environment()));

    List<String> problems = e.problems();
    assertEquals(5, problems.size(), problems::toString);
    assertContains(problems, "depth: -1 is not allowed; use 0 for full history or 1 or more commits");
    assertContains(problems, "submodules: ");
    assertTrue(problems.stream().anyMatch(p -> p.contains("BOOLEAN")), problems::toString);
    assertContains(problems, "allowed-schemes: 'ssh' is not supported; use some of [https, http]");
    assertContains(problems, "connect-timeout: 50ms is not allowed; use at least 100ms");
    assertContains(problems, "progress-interval: 10ms is too short; use at least 100ms");
  }

  @Test
  void missingKeysAndWrongTypesAreProblemsToo() {
    Config bad = ConfigFactory.parseString("depth = deep, allowed-schemes = []");

    StageConfigException e =
        assertThrows(StageConfigException.class, () -> GitTestSupport.settings(bad));

    List<String> problems = e.problems();
    assertEquals(11, problems.size(), problems::toString);
    assertContains(problems, "depth: ");
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("depth: ") && p.contains("NUMBER")),
        problems::toString);
    assertContains(problems, "submodules: is missing");
    assertContains(problems, "allowed-schemes: is empty, so no repository could be cloned");
    assertContains(problems, "connect-timeout: is missing");
    assertContains(problems, "progress-interval: is missing");
    assertContains(problems, "max-checkout-size: is missing");
    assertContains(problems, "cache.enabled: is missing");
    assertContains(problems, "cache.dir: is missing");
    assertContains(problems, "cache.max-size: is missing");
    assertContains(problems, "cache.lock-timeout: is missing");
    assertContains(problems, "cache.ready-checkouts: is missing");
  }

  /** A list of the wrong type is one problem, not also "is empty". */
  @Test
  void aMistypedSchemeListIsOneProblem() {
    Config bad =
        ConfigFactory.parseString("allowed-schemes = https").withFallback(GitTestSupport.reference());

    StageConfigException e =
        assertThrows(StageConfigException.class, () -> GitTestSupport.settings(bad));

    assertEquals(1, e.problems().size(), e.problems()::toString);
    assertTrue(e.problems().get(0).startsWith("allowed-schemes: "), e.problems()::toString);
    assertTrue(e.problems().get(0).contains("LIST"), e.problems()::toString);
  }

  @Test
  void factoryIsFoundByServiceLoaderAndDescribesItself() {
    // The plugin module provides the factory but does not use it; the runtime does.
    GitSettingsTest.class.getModule().addUses(StageFactory.class);
    StageFactory factory =
        ServiceLoader.load(StageFactory.class).stream()
            .map(ServiceLoader.Provider::get)
            .filter(f -> f.id().equals("git"))
            .findFirst()
            .orElseThrow();

    assertTrue(factory instanceof GitStageFactory);
    assertEquals(Set.of(StageKeys.SOURCE_DIR, StageKeys.COMMIT_SHA, StageKeys.COMMIT_TIME), factory.produces());
    assertEquals(Set.of(), factory.requires());
    assertFalse(factory.description().isBlank());
    assertEquals(List.of(GitErrors.values()), factory.errorCodes());
    assertEquals(
        List.of("depth", "submodules", "cache"),
        factory.options().stream().map(StageOption::name).toList());
  }

  @Test
  void moduleExportsNothing() {
    Module module = GitStageFactory.class.getModule();
    assertTrue(module.isNamed());
    assertEquals("dev.slipway.plugin.git", module.getName());
    assertTrue(module.getDescriptor().exports().isEmpty(), module.getDescriptor()::toString);
  }

  private static void assertContains(List<String> problems, String expected) {
    assertTrue(
        problems.stream().anyMatch(p -> p.startsWith(expected)),
        () -> "no problem starting with '" + expected + "' in " + problems);
  }
}

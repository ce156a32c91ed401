package dev.slipway.plugin.ecr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKeys;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The stage's configuration: shipped defaults, the worker's region and keys, every problem at once. */
class EcrSettingsTest {

  private static EcrTestSupport.Environment keys() {
    return new EcrTestSupport.Environment()
        .env(CredentialsSource.ACCESS_KEY_ID, "AKIASLIPWAYSETTINGS1")
        .env(CredentialsSource.SECRET_ACCESS_KEY, "settings-secret-key-31f0");
  }

  @Test
  void referenceConfHoldsTheDocumentedDefaults() throws Exception {
    EcrSettings settings =
        EcrSettings.from(EcrTestSupport.reference(), keys().region("eu-central-1"));

    assertEquals(Duration.ofMinutes(2), settings.timeout());
    assertEquals("eu-central-1", settings.region());
    assertEquals(List.of(), settings.registryIds());
    assertEquals(Optional.empty(), settings.endpointOverride());
    assertEquals(3, settings.maxAttempts());
    assertEquals(Duration.ofSeconds(20), settings.apiCallTimeout());
    assertEquals(Duration.ofSeconds(5), settings.connectTimeout());
    assertEquals(0.5, settings.refreshWhenRemaining());
    assertTrue(settings.credentials().isStatic());
    assertEquals("https://api.ecr.eu-central-1.amazonaws.com", settings.clientSpec().endpoint());
  }

  @Test
  void everyKeyInReferenceConfIsCommented() throws Exception {
    Path conf = Path.of(EcrStageFactory.class.getResource("/reference.conf").toURI());
    List<String> lines = Files.readAllLines(conf);
    Set<String> keys = EcrTestSupport.reference().root().keySet();
    assertEquals(
        Set.of("timeout", "region", "registry-ids", "endpoint-override", "max-attempts",
            "api-call-timeout", "connect-timeout", "refresh-when-remaining"),
        keys);
    for (String key : keys) {
      int at = -1;
      for (int i = 0; i < lines.size(); i++) {
        if (lines.get(i).trim().startsWith(key + " =")) {
          at = i;
        }
      }
      assertTrue(at > 0, key + " missing from reference.conf");
      assertTrue(lines.get(at - 1).trim().startsWith("#"), key + " has no comment above it");
    }
  }

  @Test
  void readsOverrides() throws Exception {
    EcrSettings settings =
        EcrSettings.from(
            EcrTestSupport.config(
                "timeout = 1m, region = us-east-1, registry-ids = [\"012345678901\", \"111111111111\"],"
                    + " endpoint-override = \"https://api.ecr.us-east-1.vpce-0abc.amazonaws.com/\","
                    + " max-attempts = 5, api-call-timeout = 10s, connect-timeout = 2s,"
                    + " refresh-when-remaining = 0.25"),
            keys().region("eu-west-1"));

    assertEquals(Duration.ofMinutes(1), settings.timeout());
    assertEquals("us-east-1", settings.region(), "the stage's own region wins");
    assertEquals(List.of("012345678901", "111111111111"), settings.registryIds());
    assertEquals(
        Optional.of(URI.create("https://api.ecr.us-east-1.vpce-0abc.amazonaws.com")),
        settings.endpointOverride());
    assertEquals(5, settings.maxAttempts());
    assertEquals(Duration.ofSeconds(10), settings.apiCallTimeout());
    assertEquals(Duration.ofSeconds(2), settings.connectTimeout());
    assertEquals(0.25, settings.refreshWhenRemaining());
  }

  @Test
  void aMissingRegionNamesEveryPlaceToSetIt() {
    StageConfigException e =
        assertThrows(
            StageConfigException.class,
            () -> new EcrStageFactory().create(EcrTestSupport.reference(), keys()));

    assertEquals(
        List.of(
            "region: not set; set worker.stages.ecr.region, worker.region or AWS_REGION to the"
                + " region of the registry, e.g. eu-west-1"),
        e.problems());
  }

  @Test
  void reportsEveryProblemAtOnceNamingEachKey() {
    Config bad =
        ConfigFactory.parseString(
                "region = \"EU West 1\", registry-ids = [\"12345\", \"111111111111\","
                    + " \"111111111111\"], endpoint-override = \"ftp://ecr.example.com\","
                    + " max-attempts = 0, api-call-timeout = 50ms, connect-timeout = 10ms,"
                    + " refresh-when-remaining = 1.5")
            .withFallback(EcrTestSupport.reference());

    StageConfigException e =
        assertThrows(
            StageConfigException.class,
            () ->
                new EcrStageFactory()
                    .create(
                        bad,
                        new EcrTestSupport.Environment()
                            .env(CredentialsSource.ACCESS_KEY_ID, "AKIAHALFSETKEY000000")));

    List<String> problems = e.problems();
    assertEquals(9, problems.size(), problems::toString);
    assertContains(problems, "region: 'EU West 1' is not an AWS region name; use one such as eu-west-1");
    assertContains(problems, "registry-ids: '12345' is not a registry id; use the 12-digit AWS account id");
    assertContains(problems, "registry-ids: '111111111111' is listed twice");
    assertContains(problems, "endpoint-override: 'ftp://ecr.example.com' must be an absolute http(s) URL");
    assertContains(problems, "max-attempts: 0 is not allowed; use 1 (no retry) to 10");
    assertContains(problems, "api-call-timeout: 50ms is too short; use at least 100ms");
    assertContains(problems, "connect-timeout: 10ms is not allowed; use at least 100ms");
    assertContains(problems, "refresh-when-remaining: 1.5 is not allowed; use a share of the token's lifetime above 0 and at most 1");
    assertContains(
        problems,
        "AWS_ACCESS_KEY_ID is set in the worker's environment but AWS_SECRET_ACCESS_KEY is not; set both");
    assertFalse(e.getMessage().contains("settings-secret-key"));
  }

  @Test
  void theWorkersRegionIsCheckedToo() {
    StageConfigException e =
        assertThrows(
            StageConfigException.class,
            () -> EcrSettings.from(EcrTestSupport.reference(), keys().region("Ireland")));

    assertContains(
        e.problems(), "region: 'Ireland' (from worker.region / AWS_REGION) is not an AWS region name");
  }

  @Test
  void endpointOverridesThatCannotWork() {
    for (String[] c :
        new String[][] {
          {"\"not a url\"", "endpoint-override: 'not a url' is not a valid URL"},
          {"\"api.ecr.eu-west-1.amazonaws.com\"", "must be an absolute http(s) URL"},
          {"\"https://\"", "is not a valid URL"},
          {"\"https://ecr.example.com/v1\"", "has a path; ECR's API lives at the root"},
          {"\"https://user:pw@ecr.example.com\"", "must not contain user info, a query or a fragment"},
          {"\"http://ecr.internal.example.com\"", "plain http is allowed only on loopback"},
        }) {
      StageConfigException e =
          assertThrows(
              StageConfigException.class,
              () ->
                  EcrSettings.from(
                      EcrTestSupport.config("region = eu-west-1, endpoint-override = " + c[0]),
                      keys()),
              c[0]);
      assertEquals(1, e.problems().size(), e.problems()::toString);
      assertTrue(e.problems().get(0).contains(c[1]), () -> c[0] + " -> " + e.problems());
    }
  }

  @Test
  void timeoutsMustFitInsideEachOther() {
    StageConfigException e =
        assertThrows(
            StageConfigException.class,
            () ->
                EcrSettings.from(
                    EcrTestSupport.config(
                        "region = eu-west-1, timeout = 10s, api-call-timeout = 30s,"
                            + " connect-timeout = 40s"),
                    keys()));

    assertContains(e.problems(), "api-call-timeout: 30000ms is longer than the stage's timeout (10000ms)");
    assertContains(e.problems(), "connect-timeout: 40000ms is longer than api-call-timeout (30000ms)");
  }

  @Test
  void refreshShareMustBeAboveZero() {
    for (String share : List.of("0", "-0.5", "1.01", "half")) {
      StageConfigException e =
          assertThrows(
              StageConfigException.class,
              () ->
                  EcrSettings.from(
                      EcrTestSupport.config("region = eu-west-1, refresh-when-remaining = " + share),
                      keys()),
              share);
      assertTrue(
          e.problems().get(0).startsWith("refresh-when-remaining: "), e.problems()::toString);
    }
  }

  @Test
  void missingKeysAndWrongTypesAreProblemsToo() {
    Config bad = ConfigFactory.parseString("max-attempts = many, registry-ids = \"123\"");

    StageConfigException e =
        assertThrows(StageConfigException.class, () -> EcrSettings.from(bad, keys()));

    List<String> problems = e.problems();
    assertEquals(8, problems.size(), problems::toString);
    assertContains(problems, "timeout: is missing");
    assertContains(problems, "region: is missing");
    assertContains(problems, "registry-ids: ");
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("registry-ids: ") && p.contains("LIST")),
        problems::toString);
    assertContains(problems, "endpoint-override: is missing");
    assertContains(problems, "max-attempts: ");
    assertTrue(problems.stream().anyMatch(p -> p.startsWith("max-attempts: ") && p.contains("NUMBER")),
        problems::toString);
    assertContains(problems, "api-call-timeout: is missing");
    assertContains(problems, "connect-timeout: is missing");
    assertContains(problems, "refresh-when-remaining: is missing");
  }

  @Test
  void credentialsComeFromTheEnvironmentOrTheDefaultChain() throws Exception {
    EcrSettings withKeys =
        EcrSettings.from(
            EcrTestSupport.config("region = eu-west-1"),
            keys().env(CredentialsSource.SESSION_TOKEN, "a-session-token-value"));
    assertTrue(withKeys.credentials().isStatic());
    assertTrue(withKeys.credentials().sessionToken().isPresent());
    assertEquals(
        "access key AKIA…NGS1 from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN in the"
            + " worker's environment",
        withKeys.credentials().describe());

    EcrSettings chain =
        EcrSettings.from(
            EcrTestSupport.config("region = eu-west-1"),
            new EcrTestSupport.Environment().env(CredentialsSource.PROFILE, "ci").env(CredentialsSource.ACCESS_KEY_ID, " "));
    assertFalse(chain.credentials().isStatic());
    assertEquals(Optional.of("ci"), chain.credentials().profile());
    assertTrue(chain.credentials().describe().contains("profile 'ci'"));

    StageConfigException e =
        assertThrows(
            StageConfigException.class,
            () ->
                EcrSettings.from(
                    EcrTestSupport.config("region = eu-west-1"),
                    new EcrTestSupport.Environment().env(CredentialsSource.SESSION_TOKEN, "orphan-token")));
    assertContains(e.problems(), "AWS_SESSION_TOKEN is set in the worker's environment without AWS_ACCESS_KEY_ID");
    assertFalse(e.getMessage().contains("orphan-token"));
  }

  @Test
  void factoryIsFoundByServiceLoaderAndDescribesItself() {
    // The plugin module provides the factory but does not use it; the runtime does.
    EcrSettingsTest.class.getModule().addUses(StageFactory.class);
    StageFactory factory =
        ServiceLoader.load(StageFactory.class).stream()
            .map(ServiceLoader.Provider::get)
            .filter(f -> f.id().equals("ecr"))
            .findFirst()
            .orElseThrow();

    assertTrue(factory instanceof EcrStageFactory);
    assertEquals(Set.of(StageKeys.REGISTRY_CREDENTIALS), factory.produces());
    assertEquals(Set.of(), factory.requires());
    assertEquals(Set.of(), factory.secretConfigPaths(), "no secrets in the stage's configuration");
    assertEquals(List.of(EcrErrors.values()), factory.errorCodes());
    assertEquals(List.of(), factory.options(), "nothing a job could change");
    assertFalse(factory.description().isBlank());
  }

  @Test
  void moduleProvidesTheFactoryAndExportsNothing() {
    Module module = EcrStageFactory.class.getModule();
    assertTrue(module.isNamed(), "tests run on the module path");
    assertEquals("dev.slipway.plugin.ecr", module.getName());
    assertTrue(module.getDescriptor().exports().isEmpty(), module.getDescriptor()::toString);
    assertEquals(1, module.getDescriptor().provides().size());
    assertEquals(
        List.of(EcrStageFactory.class.getName()),
        module.getDescriptor().provides().iterator().next().providers());
  }

  private static void assertContains(List<String> problems, String expected) {
    assertTrue(
        problems.stream().anyMatch(p -> p.startsWith(expected)),
        () -> "no problem starting with '" + expected + "' in " + problems);
  }
}

package dev.slipway.plugin.buildkit;

import static dev.slipway.plugin.buildkit.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The exact commands that build.sh forms, seen through fake {@code buildctl} and {@code docker}
 * programs that record their arguments and environment (buildctl cannot be installed here), and
 * proof that no secret reaches build.sh or anything it runs.
 */
class BuildScriptCommandTest {
  private static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-27T10:15:30.123Z"), ZoneOffset.UTC);
  private static final String CREATED = "2026-11-27T10:15:30Z";
  private static final String IMAGE = "registry.example.com/team/app:1.2";
  private static final String SOURCE_LABEL = "https://git.example.com/team/app.git";
  /** Build secrets of the job: values that must reach BuildKit through files only. */
  private static final Map<String, String> SECRETS =
      Map.of("npm_token", "npm-secret-value-0123456789abcdef", "tok", "second secret, with spaces");

  /** What build.sh may receive from the stage; the shell that records adds PWD and the like. */
  private static final Set<String> ALLOWED_ENV =
      Set.of("PATH", "HOME", "LANG", "LC_ALL", "TZ", "DOCKER_HOST", "DOCKER_CONFIG",
          "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "BUILDKIT_HOST", "SLIPWAY_DOCKER_CLI", "TMPDIR",
          "PWD", "OLDPWD", "SHLVL", "_");

  @TempDir Path tmp;
  private FakePrograms fakes;
  private Path workspace;
  private Path source;
  private Path ca;
  private Path cert;
  private Path key;

  @BeforeEach
  void setUp() throws Exception {
    fakes = new FakePrograms(tmp.resolve("fakes"));
    workspace = Files.createDirectories(tmp.resolve("workspace"));
    source = Files.createDirectories(workspace.resolve("src"));
    Fixtures.write(source, "deploy/Dockerfile.app", "FROM local/busybox:1\n");
    Files.createDirectories(source.resolve("app"));
    ca = Fixtures.write(tmp, "tls/ca.pem", "ca");
    cert = Fixtures.write(tmp, "tls/client.pem", "cert");
    key = Fixtures.write(tmp, "tls/client-key.pem", "key");
  }

  /** A worker whose PATH finds the fake buildctl first. */
  private Fixtures.Worker worker() {
    return Fixtures.worker(Map.of("PATH", fakes.bin + ":" + System.getenv().getOrDefault("PATH", "/usr/bin:/bin")));
  }

  private Map<String, Object> buildctlConfig() {
    return map(
        "script", fakes.recordingBuildScript.toString(),
        "backend", "buildctl",
        "docker-cli", fakes.docker.toString(),
        "addr", "tcp://buildkitd.example:1234",
        "tls", map("ca-cert", ca.toString(), "cert", cert.toString(), "key", key.toString()),
        "cache", map(
            "import", List.of("registry.example.com/cache/app:buildcache", "registry.example.com/cache/base:buildcache"),
            "export", "registry.example.com/cache/app:buildcache"),
        "network", "none",
        "target", "runtime",
        "platform", "linux/arm64",
        "labels", map("\"org.example.team\"", "builds"));
  }

  private StreamingJobContext job(Map<String, String> buildArgs) {
    return job(buildArgs, Map.of());
  }

  private StreamingJobContext job(Map<String, String> buildArgs, Map<String, String> secrets) {
    var request = Fixtures.request(IMAGE, "deploy/Dockerfile.app", "app", buildArgs, secrets);
    return Fixtures.job(request, workspace, source);
  }

  /** A job with per-job options (names without {@code buildkit.}). */
  private StreamingJobContext jobWithOptions(Map<String, String> options) {
    var request = Fixtures.request(IMAGE, "deploy/Dockerfile.app", "app", Map.of());
    return Fixtures.job(request, workspace, source, options);
  }

  /** The registry credentials an auth stage that ran before the build published. */
  private static final RegistryCredentials CREDENTIALS =
      new RegistryCredentials("registry.example.com:5000", "AWS", Secret.of("registry-password-7f3e9a1c"));

  private static final String CREDENTIALS_JSON = "{\"auths\":{\"registry.example.com:5000\":{\"auth\":\""
      + java.util.Base64.getEncoder().encodeToString("AWS:registry-password-7f3e9a1c".getBytes(
          java.nio.charset.StandardCharsets.UTF_8)) + "\"}}}";

  /** The job-private name the stage built under, checked to be one and not the caller's. */
  private static String builtName(StreamingJobContext job) {
    String built = job.get(StageKeys.LOCAL_IMAGE).orElseThrow();
    assertTrue(Fixtures.PRIVATE_NAME.matcher(built).matches(), built);
    assertFalse(built.contains("registry.example.com"), "never the caller's image_name: " + built);
    return built;
  }

  @Test
  void buildctlBackendFormsTheExactCommand() throws Exception {
    BuildkitStage stage = Fixtures.stage(buildctlConfig(), worker(), CLOCK);
    var job = job(Map.of("B_ARG", "two words", "A_ARG", "1"), SECRETS);
    stage.execute(job);

    String built = builtName(job);
    List<FakePrograms.Call> calls = fakes.calls();
    assertEquals(
        List.of("build.sh", "buildctl", "docker"),
        calls.subList(0, 3).stream().map(FakePrograms.Call::program).toList(),
        "build.sh checks buildkitd and the engine first");
    assertEquals(5, calls.size(), calls::toString);
    // buildctl build | docker load start together, in either order.
    FakePrograms.Call build = calls.stream().filter(c -> c.argv().contains("build")).findFirst().orElseThrow();
    FakePrograms.Call load = calls.stream().filter(c -> c.argv().equals(List.of("load"))).findFirst().orElseThrow();
    assertEquals("buildctl", build.program());
    assertEquals("docker", load.program());

    String context = source.toRealPath().resolve("app").toString();
    String dockerfileDir = source.toRealPath().resolve("deploy").toString();
    List<String> global =
        List.of(
            "--addr", "tcp://buildkitd.example:1234",
            "--tlscacert", ca.toString(),
            "--tlscert", cert.toString(),
            "--tlskey", key.toString());
    assertEquals(concat(global, List.of("debug", "workers")), calls.get(1).argv());
    assertEquals(List.of("version", "--format", "{{.Server.Version}}"), calls.get(2).argv());
    assertEquals(
        concat(
            global,
            List.of(
                "build", "--progress=plain", "--frontend", "dockerfile.v0",
                "--local", "context=" + context,
                "--local", "dockerfile=" + dockerfileDir,
                "--opt", "filename=Dockerfile.app",
                "--opt", "target=runtime",
                "--opt", "platform=linux/arm64",
                "--opt", "force-network-mode=none",
                "--opt", "build-arg:A_ARG=1",
                "--opt", "build-arg:B_ARG=two words",
                "--opt", "label:org.example.team=builds",
                "--opt", "label:org.opencontainers.image.source=" + SOURCE_LABEL,
                "--opt", "label:org.opencontainers.image.revision=" + Fixtures.COMMIT,
                "--opt", "label:org.opencontainers.image.created=" + CREATED,
                "--secret", "id=npm_token,src=" + secretFile(build, "npm_token"),
                "--secret", "id=tok,src=" + secretFile(build, "tok"),
                "--import-cache", "type=registry,ref=registry.example.com/cache/app:buildcache",
                "--import-cache", "type=registry,ref=registry.example.com/cache/base:buildcache",
                "--export-cache", "type=registry,ref=registry.example.com/cache/app:buildcache,mode=max",
                "--output", "type=docker,name=" + built)),
        build.argv());
    assertSecretsReachedBuildKitAsPrivateFilesOnly(build, job);
    assertEquals("FAKE-DOCKER-ARCHIVE", fakes.loadedArchive(), "buildctl's output is piped into docker load");

    // build.sh itself gets names only; values travel in its environment.
    FakePrograms.Call script = calls.get(0);
    assertEquals(
        List.of(
            "--backend", "buildctl", "--network", "none", "--target", "runtime",
            "--platform", "linux/arm64", "--addr", "tcp://buildkitd.example:1234",
            "--tlscacert", ca.toString(), "--tlscert", cert.toString(), "--tlskey", key.toString(),
            "--import-cache", "registry.example.com/cache/app:buildcache",
            "--import-cache", "registry.example.com/cache/base:buildcache",
            "--export-cache", "registry.example.com/cache/app:buildcache",
            "--label", "org.example.team=builds",
            "--label", "org.opencontainers.image.source=" + SOURCE_LABEL,
            "--label", "org.opencontainers.image.revision=" + Fixtures.COMMIT,
            "--label", "org.opencontainers.image.created=" + CREATED,
            "--build-arg", "A_ARG", "--build-arg", "B_ARG",
            "--secret", "npm_token=" + secretFile(build, "npm_token"), "--secret", "tok=" + secretFile(build, "tok"),
            "--",
            built, context, source.toRealPath().resolve("deploy/Dockerfile.app").toString()),
        script.argv().subList(0, script.argv().size() - 1));
    assertTrue(script.argv().get(script.argv().size() - 1).matches("slipway-job-[0-9a-f]+-[0-9a-f]{8}"), script.argv().toString());
    assertEquals("1", script.env().get("SLIPWAY_BUILD_ARG_A_ARG"));
    assertEquals("two words", script.env().get("SLIPWAY_BUILD_ARG_B_ARG"));

    assertNoSecrets(calls);
    assertTrue(job.lines().stream().anyMatch(l -> l.contains("fake buildctl build")), "buildctl's output is logged");
    assertTrue(job.lines().stream().anyMatch(l -> l.contains("Loaded image: fake")), "docker load's output is logged");
  }

  @Test
  void dockerBackendFormsTheExactCommandWithBuildArgValuesOffItsArguments() throws Exception {
    BuildkitStage stage =
        Fixtures.stage(
            map(
                "script", fakes.recordingBuildScript.toString(),
                "docker-cli", fakes.docker.toString(),
                "docker-host", "unix:///run/slipway-test/docker.sock",
                "cache", map("import", List.of("registry.example.com/cache/app:inline")),
                "network", "host",
                "target", "runtime",
                "platform", "linux/amd64"),
            worker(),
            CLOCK);
    var job = job(Map.of("GREETING", "hello there", "HTTP_PROXY", "http://127.0.0.1:3128"), SECRETS);
    stage.execute(job);
    String built = builtName(job);

    List<FakePrograms.Call> calls = fakes.calls();
    assertEquals(List.of("build.sh", "docker", "docker"), calls.stream().map(FakePrograms.Call::program).toList());
    assertEquals(List.of("version", "--format", "{{.Server.Version}}"), calls.get(1).argv());
    FakePrograms.Call build = calls.get(2);
    List<String> argv = new ArrayList<>(build.argv());
    int iid = argv.indexOf("--iidfile");
    assertTrue(argv.get(iid + 1).endsWith("/image-id"), argv.toString());
    argv.set(iid + 1, "<iidfile>");
    assertEquals(
        List.of(
            "build", "--progress=plain",
            "--file", source.toRealPath().resolve("deploy/Dockerfile.app").toString(),
            "--tag", built,
            "--iidfile", "<iidfile>",
            "--network", "host",
            "--target", "runtime",
            "--platform", "linux/amd64",
            "--label", "org.opencontainers.image.source=" + SOURCE_LABEL,
            "--label", "org.opencontainers.image.revision=" + Fixtures.COMMIT,
            "--label", "org.opencontainers.image.created=" + CREATED,
            "--cache-from", "registry.example.com/cache/app:inline",
            "--secret", "id=npm_token,src=" + secretFile(build, "npm_token"),
            "--secret", "id=tok,src=" + secretFile(build, "tok"),
            "--build-arg", "GREETING",
            // A name the docker CLI reads itself must not change the CLI's own proxy: passed inline.
            "--build-arg", "HTTP_PROXY=http://127.0.0.1:3128",
            source.toRealPath().resolve("app").toString()),
        argv);
    assertSecretsReachedBuildKitAsPrivateFilesOnly(build, job);
    assertEquals("hello there", build.env().get("GREETING"), "docker build --build-arg NAME reads the value here");
    assertEquals("1", build.env().get("DOCKER_BUILDKIT"));
    assertEquals("unix:///run/slipway-test/docker.sock", build.env().get("DOCKER_HOST"));
    assertFalse(build.env().containsKey("HTTP_PROXY"));
    // The worker's own docker logins stay out of reach of a job's Dockerfile.
    assertTrue(build.env().get("DOCKER_CONFIG").startsWith(build.env().get("TMPDIR")),
        build.env().toString());
    assertEquals(build.env().get("TMPDIR"), build.env().get("HOME"));
    assertEquals(java.util.Optional.empty(), build.dockerConfigSeen(), "no earlier stage published credentials");
    assertFalse(String.join(" ", build.argv()).contains("hello there"));
    assertFalse(argv.contains("--no-cache"), "the cache is used unless a job says no-cache");
    assertNoSecrets(calls);
  }

  @Test
  void perJobOptionsReplaceTheConfiguredTargetAndPlatformAndTurnTheCacheOff() throws Exception {
    Map<String, Object> docker = map(
        "script", fakes.recordingBuildScript.toString(), "docker-cli", fakes.docker.toString(),
        "network", "none", "target", "runtime", "platform", "linux/amd64");
    Fixtures.stage(docker, worker(), CLOCK).execute(
        jobWithOptions(Map.of("target", "tests", "platform", "linux/arm64/v8", "no-cache", "true")));
    List<String> dockerBuild = fakes.calls().get(2).argv();
    assertEquals(List.of("--target", "tests", "--platform", "linux/arm64/v8", "--no-cache"),
        dockerBuild.subList(dockerBuild.indexOf("--target"), dockerBuild.indexOf("--target") + 5), dockerBuild.toString());
    assertEquals(1, dockerBuild.stream().filter("--target"::equals).count(), "the option replaces the configured target");

    // Without options: what the configuration says.
    FakePrograms others = new FakePrograms(tmp.resolve("fakes-2"));
    Fixtures.stage(map("script", others.recordingBuildScript.toString(), "docker-cli", others.docker.toString(),
            "network", "none", "target", "runtime", "platform", "linux/amd64"), worker(), CLOCK)
        .execute(jobWithOptions(Map.of("no-cache", "false")));
    List<String> configured = others.calls().get(2).argv();
    assertTrue(String.join(" ", configured).contains("--target runtime --platform linux/amd64"), configured.toString());
    assertFalse(configured.contains("--no-cache"), configured.toString());

    // buildctl: --opt target= and platform= (a list is fine there), and buildctl's own --no-cache.
    FakePrograms third = new FakePrograms(tmp.resolve("fakes-3"));
    Map<String, Object> buildctl = buildctlConfig();
    buildctl.put("script", third.recordingBuildScript.toString());
    buildctl.put("docker-cli", third.docker.toString());
    Fixtures.stage(buildctl, Fixtures.worker(Map.of("PATH", third.bin + ":" + System.getenv().getOrDefault("PATH", "/usr/bin:/bin"))), CLOCK)
        .execute(jobWithOptions(Map.of("target", "tests", "platform", "linux/amd64,linux/arm64", "no-cache", "true")));
    String build = third.calls().stream().filter(c -> c.argv().contains("build")).map(c -> String.join(" ", c.argv()))
        .findFirst().orElseThrow();
    assertTrue(build.contains("--opt target=tests --opt platform=linux/amd64,linux/arm64 --no-cache"), build);
    assertFalse(build.contains("target=runtime"), build);
  }

  @Test
  void publishedRegistryCredentialsReachBothBackendsInAPrivateDockerConfigOnly() throws Exception {
    for (String backend : List.of("docker", "buildctl")) {
      FakePrograms programs = new FakePrograms(tmp.resolve("creds-" + backend));
      Map<String, Object> config = backend.equals("docker")
          ? map("docker-cli", programs.docker.toString(), "network", "none") : buildctlConfig();
      config.put("script", programs.recordingBuildScript.toString());
      config.put("docker-cli", programs.docker.toString());
      Path home = Files.createDirectories(tmp.resolve("worker-home-" + backend));
      Files.createDirectories(home.resolve(".docker"));
      Files.writeString(home.resolve(".docker/config.json"), "{\"auths\":{\"other.example.com\":{\"auth\":\"d29ya2VyOmxvZ2lu\"}}}");
      var worker = Fixtures.worker(Map.of("PATH", programs.bin + ":" + System.getenv().getOrDefault("PATH", "/usr/bin:/bin"),
          "HOME", home.toString(), "DOCKER_CONFIG", home.resolve(".docker").toString()));
      var job = job(Map.of());
      job.publish(StageKeys.REGISTRY_CREDENTIALS, CREDENTIALS);
      Fixtures.stage(config, worker, CLOCK).execute(job);

      List<FakePrograms.Call> calls = programs.calls();
      FakePrograms.Call build = calls.stream().filter(c -> c.argv().contains("build")).findFirst().orElseThrow();
      assertEquals(backend.equals("docker") ? "docker" : "buildctl", build.program());
      assertEquals(java.util.Optional.of(CREDENTIALS_JSON), build.dockerConfigSeen(),
          backend + ": the build saw exactly the one registry's auth");
      assertEquals("600 700", build.dockerConfigModes(), backend);
      Path dir = Path.of(build.env().get("DOCKER_CONFIG"));
      assertTrue(dir.getFileName().toString().matches("slipway-dockercfg-[0-9a-f]{16}"), dir.toString());
      assertFalse(dir.startsWith(workspace), "outside the workspace and the context: " + dir);
      assertFalse(dir.startsWith(home), "never the worker's own docker config: " + dir);
      assertFalse(Files.exists(dir), backend + ": removed right after the build: " + dir);
      assertEquals(dir, job.get(BuildkitStage.DOCKER_CONFIG_DIR).orElseThrow());
      // Recorded for crash recovery before it was made, before build.sh's own record.
      List<String> records = job.leftovers();
      assertTrue(records.indexOf("dir " + dir) >= 0 && records.indexOf("dir " + dir) < records.size() - 1,
          records.toString());
      assertTrue(records.get(records.size() - 1).startsWith("build "), records.toString());
      String password = CREDENTIALS.password().reveal();
      String auth = CREDENTIALS_JSON.replaceAll(".*\"auth\":\"([^\"]+)\".*", "$1");
      assertTrue(job.secrets().containsAll(List.of(password, auth)), "both forms are masked");
      for (FakePrograms.Call call : calls) {
        assertFalse(call.raw().contains(password) || call.raw().contains(auth), call.program() + " got the credentials"
            + " in its arguments or environment");
        assertFalse(call.raw().contains(home.resolve(".docker").toString()), call.program() + " saw the worker's config");
      }
      for (String line : job.lines()) {
        assertFalse(line.contains(password) || line.contains(auth), line);
      }
      assertTrue(String.join("\n", job.lines()).contains("registry credentials for registry.example.com:5000"),
          job.lines().toString());
      assertTrue(String.join("\n", records).indexOf(password) < 0, "no secret in a record");
      assertNoSecrets(calls);
    }
  }

  @Test
  void credentialsThatNameNoRegistryHostAreRefusedBeforeTheBuild() throws Exception {
    for (RegistryCredentials bad : List.of(
        new RegistryCredentials("https://registry.example.com", "u", Secret.of("p-4d2f")),
        new RegistryCredentials("registry.example.com/team", "u", Secret.of("p-4d2f")),
        new RegistryCredentials("registry.example.com", "us:er", Secret.of("p-4d2f")))) {
      var job = job(Map.of());
      job.publish(StageKeys.REGISTRY_CREDENTIALS, bad);
      StageException e = assertThrows(StageException.class, () ->
          Fixtures.stage(map("script", fakes.recordingBuildScript.toString(), "docker-cli", fakes.docker.toString()),
              worker(), CLOCK).execute(job));
      assertEquals("build.invalid-credentials", e.code());
      assertEquals(ErrorKind.CONFIGURATION, e.kind());
      assertFalse(e.getMessage().contains("p-4d2f"), e.getMessage());
      assertEquals(List.of(), fakes.calls(), "build.sh did not run");
      assertEquals(List.of(), job.leftovers());
    }
  }

  @Test
  void defaultNetworkAddsNoNetworkOption() throws Exception {
    BuildkitStage stage =
        Fixtures.stage(
            map("script", fakes.recordingBuildScript.toString(), "docker-cli", fakes.docker.toString(), "network", "default"),
            worker(),
            CLOCK);
    stage.execute(job(Map.of()));
    List<String> argv = fakes.calls().get(2).argv();
    assertFalse(argv.contains("--network"), argv.toString());
  }

  @Test
  void buildctlHostNetworkAsksForTheEntitlement() throws Exception {
    Map<String, Object> config = buildctlConfig();
    config.put("network", "host");
    Fixtures.stage(config, worker(), CLOCK).execute(job(Map.of()));
    String argv =
        fakes.calls().stream()
            .filter(c -> c.argv().contains("build"))
            .map(c -> String.join(" ", c.argv()))
            .findFirst()
            .orElseThrow();
    assertTrue(argv.contains("--opt force-network-mode=host --allow network.host"), argv);
  }

  @Test
  void unreachableBuildkitdIsEngineUnreachable() throws Exception {
    fakes.buildkitdDown(tmp.resolve("fakes"));
    BuildkitStage stage = Fixtures.stage(buildctlConfig(), worker(), CLOCK);
    var job = job(Map.of());
    StageException e = assertThrows(StageException.class, () -> stage.execute(job));
    assertEquals("build.engine-unreachable", e.code());
    assertEquals(ErrorKind.EXTERNAL, e.kind());
    assertTrue(e.getMessage().contains("connection refused"), e.getMessage());
    assertTrue(e.getMessage().contains("buildkitd"), e.getMessage());
    assertTrue(job.get(StageKeys.LOCAL_IMAGE).isEmpty());
    assertEquals(List.of("build.sh", "buildctl"), fakes.calls().stream().map(FakePrograms.Call::program).toList());
  }

  @Test
  void aFailedBuildRemovesTheSecretFilesToo() throws Exception {
    fakes.buildkitdDown(tmp.resolve("fakes"));
    var job = job(Map.of(), SECRETS);
    BuildkitStage stage = Fixtures.stage(buildctlConfig(), worker(), CLOCK);
    assertThrows(StageException.class, () -> stage.execute(job));
    Path dir = job.get(BuildkitStage.SECRETS_DIR).orElseThrow();
    assertFalse(Files.exists(dir), "gone when the build failed: " + dir);
    stage.cleanup(job);
    assertFalse(Files.exists(dir));
  }

  /** The file an {@code id=ID,src=FILE} argument of {@code call} names. */
  private static String secretFile(FakePrograms.Call call, String id) {
    String prefix = "id=" + id + ",src=";
    return call.argv().stream().filter(a -> a.startsWith(prefix)).map(a -> a.substring(prefix.length()))
        .findFirst().orElseThrow(() -> new AssertionError("no --secret " + prefix + " in " + call.argv()));
  }

  /**
   * BuildKit's CLI read each value from a file of its own, mode 600 in a directory of mode 700
   * outside the build context, gone after the build; the job registered every value for masking
   * before the build, and no value is in the job's log.
   */
  private void assertSecretsReachedBuildKitAsPrivateFilesOnly(FakePrograms.Call build, StreamingJobContext job)
      throws Exception {
    for (var secret : SECRETS.entrySet()) {
      assertEquals(secret.getValue(), build.secretSeen(secret.getKey()), "the CLI read the value from the file");
      assertEquals("600 700", build.secretModes(secret.getKey()));
      Path file = Path.of(secretFile(build, secret.getKey()));
      assertFalse(file.startsWith(workspace.toRealPath()) || file.startsWith(workspace), "outside the context: " + file);
      assertFalse(Files.exists(file), "removed after the build: " + file);
      assertFalse(Files.exists(file.getParent()), "its directory too: " + file.getParent());
      assertFalse(file.getFileName().toString().contains(secret.getKey()), "files are not named by key");
    }
    assertTrue(job.secrets().containsAll(SECRETS.values()), "every value is masked in the job's output");
    for (String line : job.lines()) {
      for (String value : SECRETS.values()) {
        assertFalse(line.contains(value), "a secret in the log: " + line);
      }
    }
  }

  private void assertNoSecrets(List<FakePrograms.Call> calls) {
    List<String> secrets = new ArrayList<>(List.of(Fixtures.TOKEN, Fixtures.WORKER_AWS_SECRET, "AKIAWORKERENVTEST"));
    // Build secrets reach no program's arguments or environment: only the CLIs read their files.
    secrets.addAll(SECRETS.values());
    // Surefire sets these in this JVM's own environment (see the pom): the worker process's secrets.
    for (String name : List.of("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "GITHUB_TOKEN", "SLIPWAY_TEST_SECRET")) {
      String value = System.getenv(name);
      if (value != null && !value.isBlank()) {
        secrets.add(value);
      }
    }
    for (FakePrograms.Call call : calls) {
      for (String secret : secrets) {
        assertFalse(call.raw().contains(secret), call.program() + " saw a secret: " + secret.substring(0, 4) + "...");
      }
      for (String name : List.of("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "GITHUB_TOKEN", "AWS_SESSION_TOKEN")) {
        assertFalse(call.env().containsKey(name), call.program() + " got " + name);
      }
    }
    FakePrograms.Call script = calls.get(0);
    Set<String> unexpected = new TreeSet<>(script.env().keySet());
    unexpected.removeIf(n -> ALLOWED_ENV.contains(n) || n.startsWith(BuildCommand.BUILD_ARG_PREFIX));
    assertEquals(Set.of(), unexpected, "build.sh's environment holds only what the stage chose");
  }

  private static List<String> concat(List<String> a, List<String> b) {
    List<String> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

}

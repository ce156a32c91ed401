package dev.slipway.plugin.buildkit;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;

/** What the tests of this module share: configuration, a worker environment, jobs, files. */
final class Fixtures {
  /** The repository root, the worker's home in tests: scripts/build.sh resolves against it. */
  static final Path HOME = findHome();

  static final String COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b";

  /** A secret in the worker's environment that must never reach build.sh. */
  static final String WORKER_AWS_SECRET = "aws-secret-from-the-worker-env-5a1b";

  /** The job's github token, which must never reach build.sh. */
  static final String TOKEN = "ghp_jobTokenThatMustNotLeak0123456789";

  private Fixtures() {}

  private static Path findHome() {
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isRegularFile(dir.resolve("scripts/build.sh"))) {
      dir = dir.getParent();
    }
    if (dir == null) {
      throw new IllegalStateException("no scripts/build.sh above " + Path.of("").toAbsolutePath());
    }
    return dir;
  }

  /** The worker as tests see it: the repository as home, an environment of our choosing. */
  record Worker(Path home, Map<String, String> env) implements WorkerEnvironment {
    @Override
    public String workerId() {
      return "test-worker";
    }

    @Override
    public Optional<String> region() {
      return Optional.of("eu-west-1");
    }

    @Override
    public Optional<String> env(String name) {
      return Optional.ofNullable(env.get(name));
    }
  }

  /**
   * A worker whose environment is this JVM's, plus AWS credentials and a token that must never
   * reach build.sh, plus {@code extra}.
   */
  static Worker worker(Map<String, String> extra) {
    Map<String, String> env = new HashMap<>(System.getenv());
    env.put("AWS_ACCESS_KEY_ID", "AKIAWORKERENVTEST");
    env.put("AWS_SECRET_ACCESS_KEY", WORKER_AWS_SECRET);
    env.put("GITHUB_TOKEN", TOKEN);
    env.putAll(extra);
    return new Worker(HOME, env);
  }

  /** The stage's reference.conf block with {@code overrides} on top (keys are paths). */
  static Config config(Map<String, ?> overrides) {
    return ConfigFactory.parseMap(overrides)
        .withFallback(ConfigFactory.defaultReference().getConfig("worker.stages.buildkit"))
        .resolve();
  }

  static BuildkitSettings settings(Map<String, ?> overrides, WorkerEnvironment worker)
      throws StageConfigException {
    return BuildkitSettings.from(config(overrides), worker);
  }

  static BuildkitStage stage(Map<String, ?> overrides, WorkerEnvironment worker, Clock clock)
      throws StageConfigException {
    return new BuildkitStage(settings(overrides, worker), worker, clock);
  }

  static JobRequestView request(
      String image, String dockerfile, String context, Map<String, String> buildArgs) {
    return request(image, dockerfile, context, buildArgs, Map.of());
  }

  static JobRequestView request(
      String image, String dockerfile, String context, Map<String, String> buildArgs,
      Map<String, String> buildSecrets) {
    Map<String, Secret> secrets = new LinkedHashMap<>();
    buildSecrets.forEach((k, v) -> secrets.put(k, Secret.of(v)));
    return JobRequestView.builder("https://x-access-token:" + TOKEN + "@git.example.com/team/app.git", image)
        .jobId("job-" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt()))
        .branch("main")
        .token(Optional.of(Secret.of(TOKEN)))
        .dockerfilePath(dockerfile)
        .contextDir(context)
        .buildArgs(buildArgs)
        .buildSecrets(secrets)
        .build();
  }

  /** The private names the stage builds under: {@code slipway.local/<job id>-<8 hex>:build}. */
  static final java.util.regex.Pattern PRIVATE_NAME =
      java.util.regex.Pattern.compile("slipway\\.local/job-[0-9a-f]{8}-[0-9a-f]{8}:build");

  /** A job whose git stage has published {@code source} and {@link #COMMIT}. */
  static StreamingJobContext job(JobRequestView request, Path workspace, Path source) {
    return job(request, workspace, source, Map.of());
  }

  /** The same, with these per-job options for the stage (names without {@code buildkit.}). */
  static StreamingJobContext job(JobRequestView request, Path workspace, Path source,
      Map<String, String> options) {
    RecordingJobContext recording =
        new RecordingJobContext(request, workspace).options(StageOptions.of(options));
    recording.publish(StageKeys.SOURCE_DIR, source);
    recording.publish(StageKeys.COMMIT_SHA, COMMIT);
    return new StreamingJobContext(recording);
  }

  static Path write(Path dir, String name, String content) {
    try {
      Path file = dir.resolve(name);
      Files.createDirectories(file.getParent());
      Files.writeString(file, content, StandardCharsets.UTF_8);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Path executable(Path dir, String name, String content) {
    Path file = write(dir, name, content);
    try {
      Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /** A fresh image name that no other test uses. */
  static String uniqueImage() {
    return "slipway-test/buildkit-"
        + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt())
        + ":1";
  }

  static Map<String, Object> map(Object... keysAndValues) {
    Map<String, Object> map = new LinkedHashMap<>();
    for (int i = 0; i < keysAndValues.length; i += 2) {
      map.put((String) keysAndValues[i], keysAndValues[i + 1]);
    }
    return map;
  }
}

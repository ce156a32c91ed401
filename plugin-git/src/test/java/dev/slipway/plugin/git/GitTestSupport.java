package dev.slipway.plugin.git;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import java.util.stream.Stream;

/** Builds the stage as the runtime would, from reference.conf plus a test's overrides. */
final class GitTestSupport {
  private GitTestSupport() {}

  /** The plugin's own defaults, the {@code worker.stages.git} block of its reference.conf. */
  static Config reference() {
    return ConfigFactory.parseURL(GitStageFactory.class.getResource("/reference.conf"))
        .resolve()
        .getConfig("worker.stages.git");
  }

  /** The stage block: {@code hocon} over reference.conf, with http allowed for the test server. */
  static Config config(String hocon) {
    return ConfigFactory.parseString(hocon)
        .withFallback(ConfigFactory.parseString("allowed-schemes = [http]"))
        .withFallback(reference())
        .resolve();
  }

  /** The settings {@code config} gives, read as the factory reads them. */
  static GitSettings settings(Config config) throws StageConfigException {
    return GitSettings.from(config, environment());
  }

  /**
   * The stage as configured by {@code hocon}; unless that sets {@code cache.dir}, with a mirror
   * cache of its own, empty, so that each test's clones start cold as they would on a new worker.
   */
  static Stage stage(String hocon) throws StageConfigException {
    Config overrides = ConfigFactory.parseString(hocon);
    if (!overrides.hasPath("cache.dir")) {
      overrides = overrides.withFallback(
          ConfigFactory.parseMap(Map.of("cache.dir", freshCacheDir().toString())));
    }
    return new GitStageFactory().create(
        overrides.withFallback(config("")).resolve(), environment());
  }

  /**
   * The stage exactly as reference.conf configures it (https only), but for its mirror cache,
   * which is a fresh directory of its own rather than the working directory's tmp/git-cache.
   */
  static Stage referenceStage() throws StageConfigException {
    return new GitStageFactory().create(
        ConfigFactory.parseMap(Map.of("cache.dir", freshCacheDir().toString()))
            .withFallback(reference()).resolve(),
        environment());
  }

  private static Path cacheRoot;

  /** A new, empty directory for a stage's mirror cache; all of them go when the JVM exits. */
  static synchronized Path freshCacheDir() {
    try {
      if (cacheRoot == null) {
        cacheRoot = Files.createTempDirectory("git-cache-test-");
        Path root = cacheRoot;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(root)));
      }
      return Files.createTempDirectory(cacheRoot, "cache-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void deleteTree(Path root) {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException | UncheckedIOException e) {
      // Temporary files; the next run does not depend on them.
    }
  }

  static Stage stage() throws StageConfigException {
    return stage("");
  }

  /** Validates, then executes, as the runtime does. */
  static void run(Stage stage, JobContext context) throws Exception {
    stage.validate(context.request(), context.options());
    stage.execute(context);
  }

  static RecordingJobContext context(Path workspace, String url, String branch, String token) {
    return new RecordingJobContext(
        RecordingJobContext.request(url, branch, token, "app:test"), workspace);
  }

  static WorkerEnvironment environment() {
    return new WorkerEnvironment() {
      @Override
      public String workerId() {
        return "test-worker";
      }

      @Override
      public Optional<String> region() {
        return Optional.empty();
      }

      @Override
      public Path home() {
        return Path.of(".");
      }

      @Override
      public Optional<String> env(String name) {
        return Optional.empty();
      }
    };
  }

  /**
   * A context whose caller may clone only what {@code check} allows, as the runtime's {@link
   * JobContext#repositoryRefusal} answers from the caller's allowed-repositories; it records every
   * URL asked. RecordingJobContext always allows.
   */
  static final class CheckedContext implements JobContext {
    final RecordingJobContext delegate;
    final List<String> asked = new CopyOnWriteArrayList<>();
    private final Function<String, Optional<String>> check;

    CheckedContext(RecordingJobContext delegate, Function<String, Optional<String>> check) {
      this.delegate = delegate;
      this.check = check;
    }

    @Override
    public Optional<String> repositoryRefusal(String url) {
      asked.add(url);
      return check.apply(url);
    }

    @Override
    public String jobId() {
      return delegate.jobId();
    }

    @Override
    public JobRequestView request() {
      return delegate.request();
    }

    @Override
    public StageOptions options() {
      return delegate.options();
    }

    @Override
    public Path workspace() {
      return delegate.workspace();
    }

    @Override
    public <T> Optional<T> get(StageKey<T> key) {
      return delegate.get(key);
    }

    @Override
    public <T> void publish(StageKey<T> key, T value) {
      delegate.publish(key, value);
    }

    @Override
    public JobLog log() {
      return delegate.log();
    }

    @Override
    public void addSecret(String secret) {
      delegate.addSecret(secret);
    }

    @Override
    public boolean isCancelled() {
      return delegate.isCancelled();
    }

    @Override
    public void onCancel(Runnable action) {
      delegate.onCancel(action);
    }
  }

  /** A log line and when it was written. */
  record TimedLine(long nanos, String line) {}

  /** A context that also records when each log line was written. */
  static final class TimedContext implements JobContext {
    final RecordingJobContext delegate;
    final List<TimedLine> lines = new CopyOnWriteArrayList<>();

    TimedContext(RecordingJobContext delegate) {
      this.delegate = delegate;
    }

    @Override
    public String jobId() {
      return delegate.jobId();
    }

    @Override
    public JobRequestView request() {
      return delegate.request();
    }

    @Override
    public StageOptions options() {
      return delegate.options();
    }

    @Override
    public Path workspace() {
      return delegate.workspace();
    }

    @Override
    public <T> Optional<T> get(StageKey<T> key) {
      return delegate.get(key);
    }

    @Override
    public <T> void publish(StageKey<T> key, T value) {
      delegate.publish(key, value);
    }

    @Override
    public JobLog log() {
      JobLog log = delegate.log();
      return new JobLog() {
        @Override
        public void line(String line) {
          lines.add(new TimedLine(System.nanoTime(), line));
          log.line(line);
        }

        @Override
        public OutputStream lineStream() {
          return log.lineStream();
        }
      };
    }

    @Override
    public void addSecret(String secret) {
      delegate.addSecret(secret);
    }

    @Override
    public boolean isCancelled() {
      return delegate.isCancelled();
    }

    @Override
    public void onCancel(Runnable action) {
      delegate.onCancel(action);
    }
  }
}

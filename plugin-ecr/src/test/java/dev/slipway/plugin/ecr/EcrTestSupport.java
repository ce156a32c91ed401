package dev.slipway.plugin.ecr;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.testkit.EcrStandIn;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/** Builds the stage as the runtime would, from reference.conf plus a test's overrides. */
final class EcrTestSupport {
  private EcrTestSupport() {}

  /** The plugin's own defaults, the {@code worker.stages.ecr} block of its reference.conf. */
  static Config reference() {
    return ConfigFactory.parseURL(EcrStageFactory.class.getResource("/reference.conf"))
        .resolve()
        .getConfig("worker.stages.ecr");
  }

  /** {@code hocon} over reference.conf. */
  static Config config(String hocon) {
    return ConfigFactory.parseString(hocon).withFallback(reference()).resolve();
  }

  /** The stage block for {@code ecr}: its endpoint and region, then {@code hocon}. */
  static Config config(EcrStandIn ecr, String hocon) {
    return ConfigFactory.parseString(hocon)
        .withFallback(
            ConfigFactory.parseMap(
                Map.of("endpoint-override", ecr.endpoint().toString(), "region", ecr.region())))
        .withFallback(reference())
        .resolve();
  }

  /** A worker whose environment holds the stand-in's keys. */
  static Environment environment(EcrStandIn ecr) {
    return new Environment()
        .env(CredentialsSource.ACCESS_KEY_ID, ecr.accessKeyId())
        .env(CredentialsSource.SECRET_ACCESS_KEY, ecr.secretAccessKey());
  }

  static Stage stage(EcrStageFactory factory, EcrStandIn ecr, String hocon)
      throws StageConfigException {
    return factory.create(config(ecr, hocon), environment(ecr));
  }

  static RecordingJobContext context(Path workspace, String image) {
    return new RecordingJobContext(
        RecordingJobContext.request("https://github.com/owner/app.git", "", null, image), workspace);
  }

  static RecordingJobContext context(Path workspace) {
    return context(workspace, "app:1.0");
  }

  /** A throwable with its causes and stack, as a log would print it. */
  static String printed(Throwable t) {
    StringWriter out = new StringWriter();
    t.printStackTrace(new PrintWriter(out));
    return out.toString();
  }

  /** A worker environment whose variables the test sets. */
  static final class Environment implements WorkerEnvironment {
    private final Map<String, String> variables = new HashMap<>();
    private String region;

    Environment env(String name, String value) {
      variables.put(name, value);
      return this;
    }

    Environment region(String region) {
      this.region = region;
      return this;
    }

    @Override
    public String workerId() {
      return "test-worker";
    }

    @Override
    public Optional<String> region() {
      return Optional.ofNullable(region);
    }

    @Override
    public Path home() {
      return Path.of(".");
    }

    @Override
    public Optional<String> env(String name) {
      return Optional.ofNullable(variables.get(name));
    }
  }

  /** A clock the test moves by hand. */
  static final class TestClock extends Clock {
    private volatile Instant now;

    TestClock(Instant start) {
      this.now = start;
    }

    void advance(Duration by) {
      now = now.plus(by);
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  }
}

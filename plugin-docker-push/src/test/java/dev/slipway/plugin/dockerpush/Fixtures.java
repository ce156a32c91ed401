package dev.slipway.plugin.dockerpush;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.WorkerEnvironment;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;

/** What the tests of this module share: configuration, a worker environment, jobs. */
final class Fixtures {
  /** The job's github token: it must never show up in anything the stage writes. */
  static final String TOKEN = "ghp_jobTokenThatMustNotLeak0123456789";

  private Fixtures() {}

  /** The worker as tests see it: an environment of the test's choosing. */
  record Worker(Map<String, String> env) implements WorkerEnvironment {
    @Override
    public String workerId() {
      return "test-worker";
    }

    @Override
    public Optional<String> region() {
      return Optional.of("eu-west-1");
    }

    @Override
    public Path home() {
      return Path.of("").toAbsolutePath();
    }

    @Override
    public Optional<String> env(String name) {
      return Optional.ofNullable(env.get(name));
    }
  }

  static Worker worker(Map<String, String> env) {
    return new Worker(Map.copyOf(env));
  }

  /** The stage's reference.conf block with {@code overrides} on top (keys are paths). */
  static Config config(Map<String, ?> overrides) {
    return ConfigFactory.parseMap(overrides)
        .withFallback(ConfigFactory.defaultReference().getConfig("worker.stages.docker-push"))
        .resolve();
  }

  static DockerPushSettings settings(Map<String, ?> overrides) throws StageConfigException {
    return DockerPushSettings.from(config(overrides), worker(Map.of()));
  }

  static JobRequestView request(String imageName) {
    return request(imageName, List.of());
  }

  /** A job's request for {@code imageName}, pushed under {@code extraTags} too. */
  static JobRequestView request(String imageName, List<String> extraTags) {
    return JobRequestView.builder("https://git.example.com/team/app.git", imageName)
        .jobId("job-" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt()))
        .branch("main")
        .token(Optional.of(Secret.of(TOKEN)))
        .extraTags(extraTags)
        .build();
  }

  /** A job whose build stage published {@code localImage}. */
  static RecordingJobContext job(String imageName, String localImage, Path workspace) {
    return job(request(imageName), localImage, workspace);
  }

  /** A job of {@code request} whose build stage published {@code localImage}. */
  static RecordingJobContext job(JobRequestView request, String localImage, Path workspace) {
    RecordingJobContext context = new RecordingJobContext(request, workspace);
    context.publish(StageKeys.LOCAL_IMAGE, localImage);
    return context;
  }

  static String unique() {
    return HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt());
  }

  static Map<String, Object> map(Object... keysAndValues) {
    Map<String, Object> map = new LinkedHashMap<>();
    for (int i = 0; i < keysAndValues.length; i += 2) {
      map.put((String) keysAndValues[i], keysAndValues[i + 1]);
    }
    return map;
  }
}

package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * {@code test-push}: names where it would push the job's image, as a push stage does, and
 * publishes the image URI without pushing anything. {@code image_name}'s first component is the
 * registry when it has a dot or a colon; else the configured {@code registry}, if not empty; else
 * the registry is left to run time (as with an auth stage). Extra tags are published as {@code
 * <image-uri>:<tag>}.
 */
public final class PushTargetStageFactory implements StageFactory {
  @Override
  public String id() {
    return "test-push";
  }

  @Override
  public Set<StageKey<?>> produces() {
    return Set.of(StageKeys.IMAGE_URI, StageKeys.EXTRA_IMAGE_URIS);
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) {
    String configured = config.hasPath("registry") ? config.getString("registry") : "";
    return new Stage() {
      @Override
      public List<PushTarget> pushTargets(JobRequestView request) {
        return List.of(target(request.imageName(), configured));
      }

      @Override
      public void execute(dev.slipway.worker.api.JobContext context) {
        PushTarget target = target(context.request().imageName(), configured);
        String repository = target.registry().orElse("runtime.registry") + "/"
            + target.repository();
        context.publish(StageKeys.IMAGE_URI, repository);
        context.publish(StageKeys.EXTRA_IMAGE_URIS, context.request().extraTags().stream()
            .map(tag -> repository + ":" + tag).toList());
      }
    };
  }

  static PushTarget target(String imageName, String configured) {
    String name = imageName;
    int colon = name.lastIndexOf(':');
    if (colon > name.lastIndexOf('/')) {
      name = name.substring(0, colon);
    }
    int slash = name.indexOf('/');
    if (slash > 0) {
      String first = name.substring(0, slash);
      if (first.contains(".") || first.contains(":")) {
        return new PushTarget(Optional.of(first), name.substring(slash + 1));
      }
    }
    return new PushTarget(Optional.of(configured).filter(c -> !c.isEmpty()), name);
  }
}

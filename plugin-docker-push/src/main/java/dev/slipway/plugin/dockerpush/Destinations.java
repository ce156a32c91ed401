package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.StageException;
import java.util.Optional;

/**
 * Decides where a job's image goes and whose credentials go with it. The registry is the one an
 * auth stage published, else the configured {@code registry}, else the one {@code image_name}
 * names; credentials go only to the registry they belong to (the auth stage's, or the configured
 * one for static {@code auth}, which requires it). An {@code image_name} that names another
 * registry is refused rather than pushed: a job must not choose where the worker's credentials go.
 *
 * <p>The same rules answer before the job runs ({@link #declaredRegistry}, for {@code validate}
 * and the push targets the runtime admits) and when it runs ({@link #resolve}), so that a job is
 * pushed only where it was admitted to.
 */
final class Destinations {
  private static final String REGISTRY_KEY = "worker.stages.docker-push.registry";

  private final DockerPushSettings settings;

  Destinations(DockerPushSettings settings) {
    this.settings = settings;
  }

  /**
   * The registry as far as it is known before the job runs, canonical: {@code image_name}'s host,
   * else the configured {@code registry}, else empty (an auth stage publishes one when the job
   * runs).
   *
   * @param imageName the request's {@code image_name} as given, for messages
   * @throws StageException {@code push.registry-not-allowed} when {@code image_name} names another
   *     registry than the configured one
   */
  Optional<String> declaredRegistry(ImageName name, String imageName) throws StageException {
    Optional<String> configured = settings.registry().map(ImageName::canonicalRegistry);
    if (name.registry().isEmpty()) {
      return configured;
    }
    String host = ImageName.canonicalRegistry(name.registry().get());
    if (configured.isPresent() && !configured.get().equals(host)) {
      throw notAllowed(name, imageName, configured.get(), REGISTRY_KEY);
    }
    return Optional.of(host);
  }

  /**
   * Where the job's image goes and with which credentials, once earlier stages ran.
   *
   * @param published the credentials an auth stage published for this job, if any
   * @throws StageException {@code push.registry-not-allowed} when the image would go elsewhere
   *     than its credentials belong or than the job was admitted to; {@code push.no-registry} when
   *     no registry is known at all
   */
  Destination resolve(ImageName name, String imageName, Optional<RegistryCredentials> published)
      throws StageException {
    Optional<String> declared = declaredRegistry(name, imageName);
    String registry;
    if (published.isPresent()) {
      registry = ImageName.canonicalRegistry(published.get().registry());
      Optional<String> configured = settings.registry().map(ImageName::canonicalRegistry);
      if (configured.isPresent() && !configured.get().equals(registry)) {
        // The job was admitted for the configured registry; pushing to the auth stage's instead
        // would go where no one checked, and its credentials belong nowhere else.
        throw new StageException(
            PushErrors.REGISTRY_NOT_ALLOWED.withKind(ErrorKind.CONFIGURATION),
            "the auth stage published credentials for registry " + registry + ", but " + REGISTRY_KEY + " is "
                + configured.get() + ", the registry this job was admitted to push to (" + configured.get() + "/"
                + name.repository() + "); nothing is pushed. Set " + REGISTRY_KEY + " to " + registry
                + ", or remove it so that the auth stage's registry is the only one");
      }
      if (declared.isPresent() && !declared.get().equals(registry)) {
        throw notAllowed(name, imageName, registry, "published by the auth stage");
      }
    } else if (declared.isPresent()) {
      registry = declared.get();
    } else {
      throw new StageException(
          PushErrors.NO_REGISTRY,
          "image_name '" + imageName + "' names no registry, no auth stage published one and " + REGISTRY_KEY
              + " is not set; set it (e.g. registry = \"registry.example.com\"), add an auth stage such as ecr"
              + " to worker.pipeline, or give image_name with a registry host");
    }
    ImageName.Target target = name.in(registry);
    if (published.isPresent()) {
      return new Destination(
          target, published, "with the credentials of user '" + published.get().username() + "' from the auth stage");
    }
    if (settings.auth().isPresent()) {
      // Only ever the configured registry: static auth requires it and declaredRegistry refused any other.
      DockerPushSettings.StaticAuth auth = settings.auth().get();
      return new Destination(
          target,
          Optional.of(new RegistryCredentials(target.registry(), auth.username(), auth.password())),
          "with the credentials of user '" + auth.username() + "' from worker.stages.docker-push.auth");
    }
    return new Destination(
        target,
        Optional.empty(),
        "without credentials (no auth stage published any, worker.stages.docker-push.auth is not set)");
  }

  private static StageException notAllowed(ImageName name, String imageName, String known, String knownFrom) {
    String path = name.repository() + name.tag().map(t -> ":" + t).orElse("");
    return new StageException(
        PushErrors.REGISTRY_NOT_ALLOWED,
        "image_name '" + imageName + "' names registry " + name.registry().orElse("") + ", but this worker pushes"
            + " only to " + known + " (" + knownFrom + "); give image_name without a registry host, e.g. '" + path + "', or with that one, e.g. '" + known + "/"
            + path + "'");
  }
}

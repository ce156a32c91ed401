package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.LongSupplier;

/**
 * Pushes the image an earlier stage built (under a job-private name) as {@code
 * <registry>/<repository>:<tag>} and under each of the request's extra tags, with the job's
 * credentials, confirms each tag's digest with the registry, and publishes {@link
 * StageKeys#IMAGE_URI}, {@link StageKeys#IMAGE_DIGEST} and {@link StageKeys#EXTRA_IMAGE_URIS}.
 *
 * <p>The work is split by what it decides: {@link RequestedImage} reads the request, {@link
 * Destinations} where the image goes and with whose credentials, {@link LocalTags} the local names
 * the push borrows on the shared engine (under a lock per name, given back or kept), {@link
 * PushWithRetries} the push itself, {@link DigestCheck} the registry's confirmation. One instance
 * serves every job of the worker; per-job state lives in the job's context under a private key.
 */
final class DockerPushStage implements Stage {
  /**
   * The namespace of job-private local names (the buildkit stage builds under it); such a
   * published {@link StageKeys#LOCAL_IMAGE} is removed at cleanup, any other name is the build
   * stage's business. Kept in step with plugin-buildkit's {@code PrivateImageName}.
   */
  static final String PRIVATE_NAMESPACE = "slipway.local/";

  /** The per-job option that keeps the pushed names in the engine when false. */
  static final String REMOVE_LOCAL_TAGS = "remove-local-tags";

  /** What this job changed in the engine's names, for settling them and cleanup. */
  private static final StageKey<LocalNames> LOCAL_NAMES = StageKey.of("docker-push-local-names", LocalNames.class);

  private final DockerPushSettings settings;
  private final Destinations destinations;
  private final ImageEngine engine;
  private final LocalTags localTags;
  private final PushWithRetries pushes;
  private final DigestCheck digests;
  private final LongSupplier nanoTime;

  DockerPushStage(DockerPushSettings settings, ImageEngine engine, RegistryClient registry, LongSupplier nanoTime) {
    this(settings, engine, registry, nanoTime, LocalNameLocks.PROCESS);
  }

  DockerPushStage(DockerPushSettings settings, ImageEngine engine, RegistryClient registry, LongSupplier nanoTime,
      LocalNameLocks locks) {
    this.settings = settings;
    this.destinations = new Destinations(settings);
    this.engine = engine;
    this.localTags = new LocalTags(engine, locks);
    this.pushes = new PushWithRetries(settings, engine, registry, nanoTime);
    this.digests = new DigestCheck(settings.retry(), registry, settings.digestCheck());
    this.nanoTime = nanoTime;
  }

  /**
   * Refuses a malformed {@code image_name} or extra tag, and an {@code image_name} that names
   * another registry than the configured one, before the job gets a workspace.
   */
  @Override
  public void validate(JobRequestView request) throws StageException {
    RequestedImage requested = RequestedImage.of(request);
    destinations.declaredRegistry(requested.name(), request.imageName());
  }

  /**
   * One target per tag pushed (the main one, then each extra tag), all in the one place the image
   * goes: {@code image_name}'s registry, else the configured one, else empty (an auth stage
   * publishes it when the job runs); {@code execute} pushes nowhere else.
   */
  @Override
  public List<PushTarget> pushTargets(JobRequestView request) throws StageException {
    RequestedImage requested = RequestedImage.of(request);
    PushTarget target = new PushTarget(
        destinations.declaredRegistry(requested.name(), request.imageName()), requested.name().repository());
    List<PushTarget> targets = new ArrayList<>();
    for (int i = 0; i <= requested.extraTags().size(); i++) {
      targets.add(target);
    }
    return List.copyOf(targets);
  }

  @Override
  public void execute(JobContext context) throws StageException, InterruptedException {
    long start = nanoTime.getAsLong();
    String localImage = context.require(StageKeys.LOCAL_IMAGE);
    RequestedImage requested = RequestedImage.of(context.request());
    LocalNames names = new LocalNames(!context.options().bool(REMOVE_LOCAL_TAGS).orElse(true));
    context.publish(LOCAL_NAMES, names);
    Destination main = destinations.resolve(
        requested.name(), context.request().imageName(), context.get(StageKeys.REGISTRY_CREDENTIALS));
    List<Destination> all = new ArrayList<>();
    all.add(main);
    requested.extraTags().forEach(tag -> all.add(main.withTag(tag)));
    main.credentials().ifPresent(c -> context.addSecret(c.password().reveal()));
    context.log().line("pushing " + localImage + " as " + main.target()
        + (requested.extraTags().isEmpty() ? "" : " and under the extra tags " + requested.extraTags())
        + " " + main.credentialsSource());

    Cancellation cancellation = Cancellation.of(context);
    String digest = null;
    try {
      localTags.lock(context, names, all.stream().map(Destination::target).toList(), cancellation);
      for (Destination destination : all) {
        Optional<String> streamDigest;
        try {
          localTags.tag(context, names, localImage, destination.target());
          streamDigest = pushes.push(context, destination, cancellation);
        } finally {
          // At once, not at cleanup: the name points at this job's image no longer than its push,
          // unless the job asked to keep it (settled once every tag is confirmed).
          if (!names.keepAsked()) {
            localTags.settle(context, names);
          }
        }
        if (destination == main) {
          digest = digests.confirm(context, main, streamDigest, cancellation);
        } else {
          digests.confirmExtra(context, destination, streamDigest, main, digest, cancellation);
        }
      }
      names.pushed();
    } catch (StageException e) {
      // Tell the auth stage that its credentials were refused, so it does not hand them out again.
      Optional<RegistryCredentials> published = context.get(StageKeys.REGISTRY_CREDENTIALS);
      if (e.code().equals(PushErrors.DENIED.code()) && published.isPresent()
          && main.credentials().equals(published)) {
        context.publish(StageKeys.REJECTED_CREDENTIALS, published.get());
      }
      throw e;
    } finally {
      if (names.keepAsked()) {
        // Kept when every tag was confirmed, else given back like any other job's.
        localTags.settle(context, names);
      }
      names.releaseSettled();
    }

    List<String> extraUris = all.subList(1, all.size()).stream().map(d -> d.target().reference()).toList();
    context.publish(StageKeys.IMAGE_URI, main.target().reference());
    context.publish(StageKeys.IMAGE_DIGEST, digest);
    context.publish(StageKeys.EXTRA_IMAGE_URIS, extraUris);
    context.log().line("pushed " + main.target() + "@" + digest
        + (extraUris.isEmpty() ? "" : " and " + extraUris) + " in " + Cancellation.seconds(nanoTime.getAsLong() - start));
  }

  /**
   * Settles what {@link #execute} could not (a name, when the engine failed just then), releases
   * its locks, and removes the build stage's private name, whatever the outcome. Never throws.
   */
  @Override
  public void cleanup(JobContext context) {
    try {
      context.get(LOCAL_NAMES).ifPresent(names -> {
        try {
          localTags.settle(context, names);
        } finally {
          names.releaseAll();
        }
      });
      context.get(StageKeys.LOCAL_IMAGE)
          .filter(image -> image.startsWith(PRIVATE_NAMESPACE))
          .ifPresent(image -> {
            try {
              engine.removeTag(image);
              context.log().line("removed the build's private name " + image);
            } catch (EngineException | RuntimeException e) {
              context.log().line("could not remove the build's private name " + image + ": " + e.getMessage());
            }
          });
    } catch (RuntimeException e) {
      // Cleanup must not fail a job that is over; what was left is at most a local name.
    }
  }

  /**
   * Puts right the destination names a job of a worker that died had borrowed: see {@link
   * PushLeftovers}. The build's private name is the build stage's to remove.
   *
   * @throws IllegalStateException when the engine cannot do it now, so that the runtime keeps the
   *     records for the next start
   */
  @Override
  public void removeLeftovers(List<String> recorded, JobLog log) {
    try {
      new PushLeftovers(engine).putRight(recorded, log);
    } catch (EngineException e) {
      throw new IllegalStateException(e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    engine.close();
  }

  @Override
  public String toString() {
    return "DockerPushStage" + settings;
  }
}

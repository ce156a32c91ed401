package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tags the image an earlier stage built (under a job-private name) as {@code
 * <registry>/<repository>:<tag>} for as long as the push needs it, pushes it with the job's
 * credentials, confirms the digest with the registry, and publishes {@link StageKeys#IMAGE_URI}
 * and {@link StageKeys#IMAGE_DIGEST}.
 *
 * <p>The engine is shared, so the destination name is held under a lock of this process ({@link
 * LocalNameLocks}) from the tag to the digest check. An image that already had the name (someone
 * else's) is kept under a private name of its own meanwhile and gets the name back right after the
 * push; a name that did not exist is removed right after the push. {@link #cleanup} finishes what
 * could not be done then and removes the build's private name ({@code slipway.local/...}), however
 * the job ended. Each change to the engine's names is recorded before it is made, so that a worker
 * started after a crash puts the names right ({@link PushLeftovers}). One instance serves every job
 * of the worker; per-job state lives in the job's context under a private key.
 */
final class DockerPushStage implements Stage {
  private static final Pattern STATUS_DIGEST = Pattern.compile(": digest: (sha256:[0-9a-f]{64}) size: \\d+");
  private static final Pattern ENGINE_RETRY = Pattern.compile("Retrying in (\\d+) seconds?");

  /**
   * The namespace of job-private local names (the buildkit stage builds under it); such a
   * published {@link StageKeys#LOCAL_IMAGE} is removed at cleanup, any other name is the build
   * stage's business. Kept in step with plugin-buildkit's {@code PrivateImageName}.
   */
  static final String PRIVATE_NAMESPACE = "slipway.local/";

  /** What this job changed in the engine's names, for putting back and cleanup. */
  private static final StageKey<LocalNames> LOCAL_NAMES = StageKey.of("docker-push-local-names", LocalNames.class);

  private static final SecureRandom RANDOM = new SecureRandom();

  private final DockerPushSettings settings;
  private final Destinations destinations;
  private final ImageEngine engine;
  private final RegistryClient registry;
  private final LongSupplier nanoTime;
  private final LocalNameLocks locks;

  DockerPushStage(DockerPushSettings settings, ImageEngine engine, RegistryClient registry, LongSupplier nanoTime) {
    this(settings, engine, registry, nanoTime, LocalNameLocks.PROCESS);
  }

  DockerPushStage(DockerPushSettings settings, ImageEngine engine, RegistryClient registry, LongSupplier nanoTime,
      LocalNameLocks locks) {
    this.settings = settings;
    this.destinations = new Destinations(settings);
    this.engine = engine;
    this.registry = registry;
    this.nanoTime = nanoTime;
    this.locks = locks;
  }

  /**
   * Refuses a malformed {@code image_name}, and one that names another registry than the
   * configured one, before the job gets a workspace.
   */
  @Override
  public void validate(JobRequestView request) throws StageException {
    destinations.declaredRegistry(imageName(request), request.imageName());
  }

  /**
   * The one place the image goes: {@code image_name}'s registry, else the configured one, else
   * empty (an auth stage publishes it when the job runs); {@code execute} pushes nowhere else.
   */
  @Override
  public List<PushTarget> pushTargets(JobRequestView request) throws StageException {
    ImageName name = imageName(request);
    return List.of(new PushTarget(destinations.declaredRegistry(name, request.imageName()), name.repository()));
  }

  @Override
  public void execute(JobContext context) throws StageException, InterruptedException {
    long start = nanoTime.getAsLong();
    String localImage = context.require(StageKeys.LOCAL_IMAGE);
    LocalNames names = new LocalNames();
    context.publish(LOCAL_NAMES, names);
    ImageName name = imageName(context.request());
    Destination destination =
        destinations.resolve(name, context.request().imageName(), context.get(StageKeys.REGISTRY_CREDENTIALS));
    ImageName.Target target = destination.target();
    destination.credentials().ifPresent(c -> context.addSecret(c.password().reveal()));
    context.log().line("pushing " + localImage + " as " + target + " " + destination.credentialsSource());

    Cancellation cancellation = new Cancellation();
    context.onCancel(cancellation::cancel);

    LocalNameLocks.Held lock = locks.acquire(
        target.reference(),
        () -> cancellation.isCancelled() || context.isCancelled(),
        () -> context.log().line("waiting for another job of this worker to finish its push of " + target));
    String digest;
    try {
      Optional<String> streamDigest;
      try {
        tagForPush(context, names, localImage, target);
        streamDigest = push(context, destination, cancellation);
      } finally {
        // At once, not at cleanup: the name points at this job's image no longer than the push.
        putBack(context, names);
      }
      digest = confirm(context, destination, streamDigest, cancellation);
    } catch (StageException e) {
      // Tell the auth stage that its credentials were refused, so it does not hand them out again.
      Optional<RegistryCredentials> published = context.get(StageKeys.REGISTRY_CREDENTIALS);
      if (e.code().equals("push.denied") && published.isPresent()
          && destination.credentials().equals(published)) {
        context.publish(StageKeys.REJECTED_CREDENTIALS, published.get());
      }
      throw e;
    } finally {
      // A name not yet put back stays locked until cleanup has another go: a job that took the
      // lock now would take this job's image for the name's owner and "restore" it.
      names.releaseOrKeep(lock);
    }

    context.publish(StageKeys.IMAGE_URI, target.reference());
    context.publish(StageKeys.IMAGE_DIGEST, digest);
    context.log().line("pushed " + target + "@" + digest + " in " + seconds(nanoTime.getAsLong() - start));
  }

  /**
   * Puts back what {@link #execute} could not (the destination name, when the engine failed right
   * after the push), releases its lock, and removes the build stage's private name, whatever the
   * outcome. Never throws.
   */
  @Override
  public void cleanup(JobContext context) {
    try {
      context.get(LOCAL_NAMES).ifPresent(names -> {
        try {
          putBack(context, names);
        } finally {
          names.releaseKept();
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

  // ---------------------------------------------------------------------------------------------

  private static ImageName imageName(JobRequestView request) throws StageException {
    try {
      return ImageName.parse(request.imageName());
    } catch (IllegalArgumentException e) {
      throw new StageException("push.invalid-request", ErrorKind.INVALID_REQUEST, e.getMessage());
    }
  }

  /**
   * Points {@code target}'s name at the job's image, under the caller's lock on it. An image that
   * had the name is first given a private name of its own ({@code slipway.local/held-...:held}),
   * so that it cannot be pruned as dangling and gets the name back by {@link #putBack}; an image
   * that already is the job's needs nothing.
   */
  private void tagForPush(JobContext context, LocalNames names, String localImage, ImageName.Target target)
      throws StageException {
    try {
      Optional<String> localId = engine.imageId(localImage);
      if (localId.isEmpty()) {
        throw new StageException(
            "push.image-not-found",
            ErrorKind.INTERNAL,
            "the Docker engine has no image '" + localImage + "', which the build stage published as "
                + StageKeys.LOCAL_IMAGE.name() + "; was it removed in between?");
      }
      if (localImage.equals(target.reference())) {
        return; // a build stage that built under the destination name itself: nothing to tag
      }
      Optional<String> existing = engine.imageId(target.reference());
      if (existing.equals(localId)) {
        return; // the name already points at this very image
      }
      Optional<ImageName.Target> held = Optional.empty();
      // Each change to the engine's names is noted before it is made, so that a worker started
      // after a crash puts the name right (PushLeftovers).
      if (existing.isPresent()) {
        ImageName.Target hold = holdName();
        context.recordLeftover(PushLeftovers.hold(target, existing.get(), hold));
        engine.tag(existing.get(), hold);
        held = Optional.of(hold);
        context.log().line("the engine already has another image under " + target + " (" + shortId(existing.get())
            + "); it is kept as " + hold + " during the push and gets the name back after it");
      }
      // Noted before the tag, so that a tag that fails half-way is put back too.
      context.recordLeftover(PushLeftovers.tag(target, localId.get()));
      names.tagged(new PutBack(target, held));
      engine.tag(localImage, target);
    } catch (EngineException e) {
      throw engineFailure(e);
    }
  }

  /**
   * Gives the destination name back to the image that had it, or removes it when none had, and
   * drops the holding name. Idempotent, never throws; true when nothing is left to put back. Runs
   * with the thread's interrupt cleared (a cancelled job must still put the name back).
   */
  private boolean putBack(JobContext context, LocalNames names) {
    PutBack putBack = names.pending();
    if (putBack == null) {
      return true;
    }
    boolean interrupted = Thread.interrupted();
    try {
      ImageName.Target target = putBack.target();
      if (putBack.held().isPresent()) {
        ImageName.Target hold = putBack.held().get();
        engine.tag(hold.reference(), target);
        engine.removeTag(hold.reference());
        context.log().line("gave " + target + " back to the image that had it before the push");
      } else {
        engine.removeTag(target.reference());
        context.log().line("removed local tag " + target);
      }
      names.putBack();
      return true;
    } catch (EngineException | RuntimeException e) {
      context.log().line("could not " + (putBack.held().isPresent()
          ? "give " + putBack.target() + " back to the image that had it (kept as " + putBack.held().get() + ")"
          : "remove local tag " + putBack.target()) + ": " + e.getMessage());
      return false;
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** A fresh private name for an image whose name a push borrows. */
  private static ImageName.Target holdName() {
    byte[] random = new byte[8];
    RANDOM.nextBytes(random);
    return new ImageName.Target("slipway.local", "held-" + HexFormat.of().formatHex(random), "held");
  }

  private static String shortId(String id) {
    String hex = id.startsWith("sha256:") ? id.substring("sha256:".length()) : id;
    return hex.length() > 12 ? hex.substring(0, 12) : hex;
  }

  /**
   * A destination name this job pointed at its image.
   *
   * @param target the name
   * @param held where the image that had the name waits meanwhile; empty when none had it
   */
  private record PutBack(ImageName.Target target, Optional<ImageName.Target> held) {}

  /** One job's changes to the engine's names, and the lock it keeps while one is not put back. */
  static final class LocalNames {
    private PutBack pending;
    private LocalNameLocks.Held kept;

    private synchronized void tagged(PutBack putBack) {
      pending = putBack;
    }

    private synchronized PutBack pending() {
      return pending;
    }

    private synchronized void putBack() {
      pending = null;
    }

    /** Releases {@code lock}, or keeps it for cleanup while a name is still to be put back. */
    private synchronized void releaseOrKeep(LocalNameLocks.Held lock) {
      if (pending == null) {
        lock.release();
      } else {
        kept = lock;
      }
    }

    private synchronized void releaseKept() {
      if (kept != null) {
        kept.release();
        kept = null;
      }
    }
  }

  private static StageException engineFailure(EngineException e) {
    return switch (e.reason()) {
      case UNREACHABLE -> new StageException("push.engine-unreachable", ErrorKind.EXTERNAL, e.getMessage(), e, true);
      case NOT_FOUND -> new StageException("push.image-not-found", ErrorKind.INTERNAL, e.getMessage(), e);
      case FAILED -> new StageException("push.failed", ErrorKind.EXTERNAL, e.getMessage(), e);
    };
  }

  /** Pushes, retrying transient failures; returns the digest the engine reported, if it did. */
  private Optional<String> push(JobContext context, Destination destination, Cancellation cancellation)
      throws StageException, InterruptedException {
    DockerPushSettings.Retry retry = settings.retry();
    for (int attempt = 1; ; attempt++) {
      Attempt result = pushOnce(context, destination, cancellation);
      if (result.failure().isEmpty()) {
        return result.digest();
      }
      String message = result.failure().get();
      PushFailures.Kind kind = result.kind();
      String what = "push of " + destination.target();
      if (kind == PushFailures.Kind.DENIED) {
        throw new StageException(
            "push.denied",
            ErrorKind.EXTERNAL,
            "the registry refused the " + what + " " + destination.credentialsSource() + ": " + message);
      }
      // The engine retries a failing layer upload by itself (Docker 20.10: 5 tries, 5 s to 20 s
      // apart); a failure it already retried is not retried again, so the two never multiply.
      if (kind == PushFailures.Kind.TRANSIENT && attempt < retry.maxAttempts() && result.engineRetries() == 0) {
        backoff(context, cancellation, attempt, retry, what + " failed: " + message);
        continue;
      }
      throw new StageException(
          "push.failed",
          ErrorKind.EXTERNAL,
          what + " failed" + (attempt > 1 ? " after " + attempt + " attempts" : "")
              + (result.engineRetries() > 0 ? " (the engine had retried layer uploads " + result.engineRetries()
                  + " times itself)" : "")
              + ": " + message,
          null,
          // A registry's 5xx, 429 or reset may pass; anything else will fail the same way again.
          kind == PushFailures.Kind.TRANSIENT);
    }
  }

  /**
   * One push's outcome.
   *
   * @param failure the engine's error message, when the push failed
   * @param kind what the failure is
   * @param digest the digest the engine reported, when it did
   * @param engineRetries how many times the engine started retrying a layer upload by itself
   */
  private record Attempt(
      Optional<String> failure, PushFailures.Kind kind, Optional<String> digest, int engineRetries) {}

  private Attempt pushOnce(JobContext context, Destination destination, Cancellation cancellation)
      throws StageException, InterruptedException {
    PushProgress progress = new PushProgress(context.log(), settings.progressInterval(), nanoTime);
    AtomicReference<PushMessage> firstError = new AtomicReference<>();
    AtomicReference<String> digest = new AtomicReference<>();
    EngineRetries engineRetries = new EngineRetries(settings.retry().maxAttempts());
    ImageEngine.RunningPush push;
    try {
      push =
          engine.push(
              destination.target(),
              destination.credentials(),
              message -> {
                progress.accept(message);
                if (message.isError()) {
                  firstError.compareAndSet(null, message);
                }
                message.digest().ifPresent(digest::set);
                Matcher m = STATUS_DIGEST.matcher(message.status());
                if (m.find()) {
                  digest.compareAndSet(null, m.group(1));
                }
                engineRetries.accept(message);
              });
    } catch (EngineException e) {
      throw engineFailure(e);
    }
    engineRetries.running(push);
    cancellation.running(push);
    try {
      push.await();
    } catch (EngineException e) {
      if (e.reason() == EngineException.Reason.UNREACHABLE || cancellation.isCancelled()) {
        throw engineFailure(e);
      }
      // The connection to the engine broke mid-stream: sorted like a registry failure.
      return new Attempt(Optional.of(e.getMessage()), PushFailures.classify(e.getMessage(), Optional.empty()),
          Optional.empty(), engineRetries.count());
    } finally {
      cancellation.running(null);
      progress.flush();
    }
    if (cancellation.isCancelled() || context.isCancelled()) {
      throw new InterruptedException("the push of " + destination.target() + " was cancelled");
    }
    if (engineRetries.exhausted()) {
      throw engineRetriesExhausted(destination, engineRetries);
    }
    if (push.aborted()) {
      throw new InterruptedException("the push of " + destination.target() + " was aborted");
    }
    PushMessage error = firstError.get();
    if (error != null) {
      String message = error.error().orElse("unknown error");
      return new Attempt(Optional.of(message), PushFailures.classify(message, error.errorCode()), Optional.empty(),
          engineRetries.count());
    }
    return new Attempt(Optional.empty(), PushFailures.Kind.FAILED, Optional.ofNullable(digest.get()), engineRetries.count());
  }

  /**
   * The engine kept retrying a layer past {@code retry.max-attempts} and the push was stopped. The
   * engine says why only in its own log, so the registry is asked directly, to name the cause.
   */
  private StageException engineRetriesExhausted(Destination destination, EngineRetries retries)
      throws InterruptedException {
    String answer;
    PushFailures.Kind kind;
    try {
      registry.ping(destination.target(), destination.credentials());
      answer = "answers its API with the same credentials";
      kind = PushFailures.Kind.FAILED;
    } catch (RegistryApi.RegistryException e) {
      answer = e.getMessage();
      kind = e.kind();
    }
    int attempts = settings.retry().maxAttempts();
    String message =
        "the engine tried to upload layer " + retries.layer() + " of " + destination.target() + " "
            + (attempts == 1 ? "once" : attempts + " times") + " (retry.max-attempts) and was retrying again, so the"
            + " push was stopped; the engine logs why only in its own log. Asked directly, the registry: " + answer;
    return kind == PushFailures.Kind.DENIED
        ? new StageException("push.denied", ErrorKind.EXTERNAL, message + " (" + destination.credentialsSource() + ")")
        : new StageException("push.failed", ErrorKind.EXTERNAL, message);
  }

  /**
   * Counts the engine's own retries of layer uploads, which it announces as a countdown per layer
   * ({@code Retrying in 5 seconds}, {@code ... 4 seconds}, ...; Docker 20.10 tries 5 times, 5 s to
   * 20 s apart). A countdown that starts afresh is one more retry; when a layer is about to be tried
   * more than {@code retry.max-attempts} times, the push is aborted, so that the engine's retries are
   * bounded by the same setting as the stage's.
   */
  private static final class EngineRetries {
    private final int maxAttempts;
    private final Map<String, Integer> countdowns = new ConcurrentHashMap<>();
    private final Map<String, Integer> perLayer = new ConcurrentHashMap<>();
    private final AtomicInteger total = new AtomicInteger();
    private final AtomicReference<String> exhaustedLayer = new AtomicReference<>();
    private final AtomicReference<ImageEngine.RunningPush> push = new AtomicReference<>();

    EngineRetries(int maxAttempts) {
      this.maxAttempts = maxAttempts;
    }

    void accept(PushMessage message) {
      Matcher retrying = ENGINE_RETRY.matcher(message.status());
      if (!retrying.matches() || message.layer().isEmpty()) {
        return;
      }
      String layer = message.layer().get();
      int seconds = Integer.parseInt(retrying.group(1));
      Integer before = countdowns.put(layer, seconds);
      if (before != null && seconds <= before) {
        return;
      }
      total.incrementAndGet();
      // Retry n means attempt n + 1 comes next.
      if (perLayer.merge(layer, 1, Integer::sum) + 1 > maxAttempts && exhaustedLayer.compareAndSet(null, layer)) {
        abort();
      }
    }

    void running(ImageEngine.RunningPush running) {
      push.set(running);
      if (exhausted()) {
        abort();
      }
    }

    private void abort() {
      ImageEngine.RunningPush p = push.get();
      if (p != null) {
        p.abort();
      }
    }

    boolean exhausted() {
      return exhaustedLayer.get() != null;
    }

    String layer() {
      return exhaustedLayer.get();
    }

    int count() {
      return total.get();
    }
  }

  /** Asks the registry for the tag's digest and checks it against the engine's. */
  private String confirm(
      JobContext context, Destination destination, Optional<String> streamDigest, Cancellation cancellation)
      throws StageException, InterruptedException {
    ImageName.Target target = destination.target();
    DockerPushSettings.Retry retry = settings.retry();
    Optional<String> served;
    for (int attempt = 1; ; attempt++) {
      try {
        served = registry.manifestDigest(target, destination.credentials());
        break;
      } catch (RegistryApi.RegistryException e) {
        String what = "the registry could not confirm the digest of " + target;
        if (e.kind() == PushFailures.Kind.DENIED) {
          throw new StageException(
              "push.denied", ErrorKind.EXTERNAL, what + " " + destination.credentialsSource() + ": " + e.getMessage(), e);
        }
        if (e.kind() == PushFailures.Kind.TRANSIENT && attempt < retry.maxAttempts()) {
          backoff(context, cancellation, attempt, retry, what + ": " + e.getMessage());
          continue;
        }
        throw new StageException(
            "push.failed",
            ErrorKind.EXTERNAL,
            what + (attempt > 1 ? " after " + attempt + " attempts" : "") + ": " + e.getMessage(),
            e);
      }
    }
    if (served.isEmpty()) {
      throw new StageException(
          "push.failed",
          ErrorKind.EXTERNAL,
          "the engine reported the push of " + target + " as done" + streamDigest.map(d -> " (" + d + ")").orElse("")
              + ", but the registry has no manifest under tag '" + target.tag() + "'");
    }
    String digest = served.get();
    if (streamDigest.isPresent() && !streamDigest.get().equals(digest)) {
      throw new StageException(
          "push.digest-mismatch",
          ErrorKind.EXTERNAL,
          "the engine reported " + target + " pushed as " + streamDigest.get() + ", but the registry serves "
              + digest + " under that tag; another push may have moved the tag, or the registry (or a proxy"
              + " in front of it) rewrote the manifest");
    }
    if (streamDigest.isEmpty()) {
      context.log().line("the engine reported no digest; the registry serves " + digest);
    }
    return digest;
  }

  private void backoff(
      JobContext context, Cancellation cancellation, int attempt, DockerPushSettings.Retry retry, String why)
      throws InterruptedException {
    Duration wait = retry.backoffBefore(attempt + 1);
    context.log().line(
        "attempt " + attempt + " of " + retry.maxAttempts() + ": " + why + "; retrying in " + seconds(wait.toNanos()));
    if (cancellation.await(wait) || context.isCancelled()) {
      throw new InterruptedException("cancelled while waiting to retry");
    }
  }

  private static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.2f s", nanos / 1e9);
  }

  /** The job's cancellation as the stage sees it: aborts the running push, ends a backoff wait. */
  private static final class Cancellation {
    private final CountDownLatch cancelled = new CountDownLatch(1);
    private final AtomicReference<ImageEngine.RunningPush> current = new AtomicReference<>();

    void cancel() {
      cancelled.countDown();
      ImageEngine.RunningPush push = current.get();
      if (push != null) {
        push.abort();
      }
    }

    void running(ImageEngine.RunningPush push) {
      current.set(push);
      if (push != null && isCancelled()) {
        push.abort();
      }
    }

    boolean isCancelled() {
      return cancelled.getCount() == 0;
    }

    /** Waits {@code wait}; true when cancelled meanwhile. */
    boolean await(Duration wait) throws InterruptedException {
      return cancelled.await(wait.toNanos(), TimeUnit.NANOSECONDS);
    }
  }
}

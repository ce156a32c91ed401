package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.StageException;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code docker push} of one local name, which must point at the job's image: the engine's
 * progress to the job's log, failures in its stream sorted ({@link PushFailures}), transient ones
 * retried with backoff, the engine's own layer retries bounded by the same {@code
 * retry.max-attempts}. One instance serves every job; what a push needs of its job comes as
 * arguments.
 */
final class PushWithRetries {
  private static final Pattern STATUS_DIGEST = Pattern.compile(": digest: (sha256:[0-9a-f]{64}) size: \\d+");

  private final DockerPushSettings settings;
  private final ImageEngine engine;
  private final RegistryClient registry;
  private final LongSupplier nanoTime;

  PushWithRetries(DockerPushSettings settings, ImageEngine engine, RegistryClient registry, LongSupplier nanoTime) {
    this.settings = settings;
    this.engine = engine;
    this.registry = registry;
    this.nanoTime = nanoTime;
  }

  /** Pushes, retrying transient failures; returns the digest the engine reported, if it did. */
  Optional<String> push(JobContext context, Destination destination, Cancellation cancellation)
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
            PushErrors.DENIED,
            "the registry refused the " + what + " " + destination.credentialsSource() + ": " + message);
      }
      // The engine retries a failing layer upload by itself (Docker 20.10: 5 tries, 5 s to 20 s
      // apart); a failure it already retried is not retried again, so the two never multiply.
      if (kind == PushFailures.Kind.TRANSIENT && attempt < retry.maxAttempts() && result.engineRetries() == 0) {
        cancellation.awaitRetry(attempt, retry, what + " failed: " + message);
        continue;
      }
      throw new StageException(
          PushErrors.FAILED,
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
      throw PushErrors.engineFailure(e);
    }
    engineRetries.running(push);
    cancellation.running(push);
    try {
      push.await();
    } catch (EngineException e) {
      if (e.reason() == EngineException.Reason.UNREACHABLE || cancellation.cancelled()) {
        throw PushErrors.engineFailure(e);
      }
      // The connection to the engine broke mid-stream: sorted like a registry failure.
      return new Attempt(Optional.of(e.getMessage()), PushFailures.classify(e.getMessage(), Optional.empty()),
          Optional.empty(), engineRetries.count());
    } finally {
      cancellation.running(null);
      progress.flush();
    }
    if (cancellation.isCancelled()) {
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
        ? new StageException(PushErrors.DENIED, message + " (" + destination.credentialsSource() + ")")
        : new StageException(PushErrors.FAILED, message);
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.StageException;
import java.util.Optional;

/**
 * Confirms a push with the registry: the digest under the tag must be the one the engine reported,
 * and an extra tag must serve the main tag's. With {@code digest-check = push} the engine's report
 * is the registry's own answer to the manifest upload (its {@code Docker-Content-Digest}), taken
 * as it is: no work for what the registry already said. With {@code registry}, or when the engine
 * reported no digest, a manifest request asks what a pull will get, which also catches a proxy in
 * front of the registry that stores something else.
 */
final class DigestCheck {
  private final DockerPushSettings.Retry retry;
  private final RegistryClient registry;
  private final DockerPushSettings.DigestSource source;

  DigestCheck(DockerPushSettings.Retry retry, RegistryClient registry,
      DockerPushSettings.DigestSource source) {
    this.retry = retry;
    this.registry = registry;
    this.source = source;
  }

  /**
   * The tag's digest: the engine's report of the registry's answer, or the registry's answer to a
   * manifest request, checked against the engine's report.
   *
   * @param streamDigest the digest the engine reported for the push, if it did
   * @return the digest the registry serves
   */
  String confirm(JobContext context, Destination destination, Optional<String> streamDigest, Cancellation cancellation)
      throws StageException, InterruptedException {
    ImageName.Target target = destination.target();
    if (source == DockerPushSettings.DigestSource.PUSH && streamDigest.isPresent()) {
      return streamDigest.get();
    }
    Optional<String> served = served(destination, cancellation);
    if (served.isEmpty()) {
      throw new StageException(
          PushErrors.FAILED,
          "the engine reported the push of " + target + " as done" + streamDigest.map(d -> " (" + d + ")").orElse("")
              + ", but the registry has no manifest under tag '" + target.tag() + "'");
    }
    String digest = served.get();
    if (streamDigest.isPresent() && !streamDigest.get().equals(digest)) {
      throw new StageException(
          PushErrors.DIGEST_MISMATCH,
          "the engine reported " + target + " pushed as " + streamDigest.get() + ", but the registry serves "
              + digest + " under that tag; another push may have moved the tag, or the registry (or a proxy"
              + " in front of it) rewrote the manifest");
    }
    if (streamDigest.isEmpty()) {
      context.log().line("the engine reported no digest; the registry serves " + digest);
    }
    return digest;
  }

  /**
   * Confirms an extra tag like {@link #confirm}, and that it serves the same image as the main tag.
   *
   * @param main the main tag's destination, for the message
   * @param mainDigest the digest the registry serves under the main tag
   */
  void confirmExtra(JobContext context, Destination extra, Optional<String> streamDigest, Destination main,
      String mainDigest, Cancellation cancellation) throws StageException, InterruptedException {
    String digest = confirm(context, extra, streamDigest, cancellation);
    if (!digest.equals(mainDigest)) {
      throw new StageException(
          PushErrors.DIGEST_MISMATCH,
          "the registry serves " + digest + " under the extra tag " + extra.target() + " but " + mainDigest
              + " under the main tag " + main.target() + ", which are the same image; another push may have moved"
              + " one of the tags, or the registry (or a proxy in front of it) rewrote a manifest");
    }
  }

  /** The registry's digest for the tag, transient failures retried; empty when it has none. */
  private Optional<String> served(Destination destination, Cancellation cancellation)
      throws StageException, InterruptedException {
    ImageName.Target target = destination.target();
    for (int attempt = 1; ; attempt++) {
      try {
        return registry.manifestDigest(target, destination.credentials());
      } catch (RegistryApi.RegistryException e) {
        String what = "the registry could not confirm the digest of " + target;
        if (e.kind() == PushFailures.Kind.DENIED) {
          throw new StageException(
              PushErrors.DENIED, what + " " + destination.credentialsSource() + ": " + e.getMessage(), e);
        }
        if (e.kind() == PushFailures.Kind.TRANSIENT && attempt < retry.maxAttempts()) {
          cancellation.awaitRetry(attempt, retry, what + ": " + e.getMessage());
          continue;
        }
        throw new StageException(
            PushErrors.FAILED,
            what + (attempt > 1 ? " after " + attempt + " attempts" : "") + ": " + e.getMessage(),
            e);
      }
    }
  }
}

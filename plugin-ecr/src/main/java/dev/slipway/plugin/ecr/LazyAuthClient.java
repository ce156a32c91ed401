package dev.slipway.plugin.ecr;

import dev.slipway.worker.api.StageConfigException;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Builds the real client on the first call, not when the stage is created: the AWS SDK's client
 * (its HTTP client, TLS context, endpoint rules, retry strategy: about a thousand classes) is
 * then no part of the worker's start-up or of an idle worker's memory. The settings the client is
 * built from were all checked when the stage was created; only the object is deferred.
 */
final class LazyAuthClient implements EcrAuthClient {
  /** Makes the client; may refuse the settings as the SDK's builder does. */
  @FunctionalInterface
  interface Maker {
    EcrAuthClient make() throws StageConfigException;
  }

  private final Maker maker;
  private EcrAuthClient client;
  private boolean closed;

  LazyAuthClient(Maker maker) {
    this.maker = Objects.requireNonNull(maker, "maker");
  }

  /** The client, built by the first caller; concurrent first jobs share one. */
  private synchronized EcrAuthClient client() throws EcrFailure {
    if (closed) {
      throw new EcrFailure(EcrFailure.Reason.FAILED, "the stage is closed: the worker is stopping");
    }
    if (client == null) {
      try {
        client = maker.make();
      } catch (StageConfigException e) {
        // Not expected: the settings the SDK sees were checked at start-up. Said as it is.
        throw new EcrFailure(EcrFailure.Reason.FAILED, String.join("; ", e.problems()),
            "StageConfigException", 0, e);
      }
    }
    return client;
  }

  /** Whether the real client has been built. */
  synchronized boolean built() {
    return client != null;
  }

  @Override
  public String callerIdentity() throws EcrFailure {
    return client().callerIdentity();
  }

  @Override
  public TokenAnswer getAuthorizationToken(List<String> registryIds, Consumer<Runnable> onCancel)
      throws EcrFailure, InterruptedException {
    return client().getAuthorizationToken(registryIds, onCancel);
  }

  @Override
  public synchronized void close() {
    closed = true;
    if (client != null) {
      client.close();
    }
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.RegistryCredentials;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Builds the docker-java engine client on the first call, not when the stage is created: its two
 * DockerClients (Jackson's ObjectMapper, httpclient5's connection managers and TLS set-up) are
 * then no part of the worker's start-up or of an idle worker's memory. The settings it is built
 * from were checked when the stage was created; only the object is deferred.
 */
final class LazyEngine implements ImageEngine {
  private final Supplier<? extends ImageEngine> maker;
  private ImageEngine engine;

  LazyEngine(Supplier<? extends ImageEngine> maker) {
    this.maker = maker;
  }

  private synchronized ImageEngine engine() {
    if (engine == null) {
      engine = maker.get();
    }
    return engine;
  }

  /** Whether the real engine client has been built. */
  synchronized boolean built() {
    return engine != null;
  }

  @Override
  public Optional<String> imageId(String reference) throws EngineException {
    return engine().imageId(reference);
  }

  @Override
  public void tag(String source, ImageName.Target target) throws EngineException {
    engine().tag(source, target);
  }

  @Override
  public RunningPush push(ImageName.Target target, Optional<RegistryCredentials> credentials,
      Consumer<PushMessage> listener) throws EngineException {
    return engine().push(target, credentials, listener);
  }

  @Override
  public void removeTag(String reference) throws EngineException {
    engine().removeTag(reference);
  }

  @Override
  public synchronized void close() {
    if (engine != null) {
      engine.close();
    }
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.RegistryCredentials;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Builds the registry's HTTP client on the first call: java.net.http's client starts a selector
 * thread and the JDK's default TLS context (the CA certificates parsed), which serving does not
 * need.
 */
final class LazyRegistryClient implements RegistryClient {
  private final Supplier<? extends RegistryClient> maker;
  private RegistryClient client;

  LazyRegistryClient(Supplier<? extends RegistryClient> maker) {
    this.maker = maker;
  }

  private synchronized RegistryClient client() {
    if (client == null) {
      client = maker.get();
    }
    return client;
  }

  @Override
  public Optional<String> manifestDigest(ImageName.Target target,
      Optional<RegistryCredentials> credentials)
      throws RegistryApi.RegistryException, InterruptedException {
    return client().manifestDigest(target, credentials);
  }

  @Override
  public void ping(ImageName.Target target, Optional<RegistryCredentials> credentials)
      throws RegistryApi.RegistryException, InterruptedException {
    client().ping(target, credentials);
  }
}

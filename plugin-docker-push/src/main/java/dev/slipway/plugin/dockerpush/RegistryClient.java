package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.RegistryCredentials;
import java.util.Optional;

/**
 * What the stage asks a registry directly, past the engine: {@link RegistryApi} over HTTP, fakes in
 * tests. Failures are {@link RegistryApi.RegistryException}s whose kind says whether another try may
 * help.
 */
interface RegistryClient {
  /**
   * The digest the registry serves for {@code target}'s tag ({@code HEAD /v2/<repo>/manifests/<tag>}),
   * or empty when it has no such manifest.
   */
  Optional<String> manifestDigest(ImageName.Target target, Optional<RegistryCredentials> credentials)
      throws RegistryApi.RegistryException, InterruptedException;

  /**
   * Checks that the registry answers its API and takes the credentials ({@code GET /v2/},
   * authenticated as a push would be); returns normally when it does.
   */
  void ping(ImageName.Target target, Optional<RegistryCredentials> credentials)
      throws RegistryApi.RegistryException, InterruptedException;
}

package dev.slipway.worker.api;

import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * Credentials for one container registry, published by an auth stage for the push stage of the
 * same job. Its {@code toString} masks the password.
 *
 * @param registry the registry host, with port if any, without scheme (e.g. {@code
 *     123456789012.dkr.ecr.eu-west-1.amazonaws.com})
 * @param username the user name
 * @param password the password or token
 */
public record RegistryCredentials(String registry, String username, Secret password)
    implements SecretBearing {

  public RegistryCredentials {
    Objects.requireNonNull(registry, "registry");
    Objects.requireNonNull(username, "username");
    Objects.requireNonNull(password, "password");
  }

  @Override
  public Collection<Secret> secrets() {
    return List.of(password);
  }
}

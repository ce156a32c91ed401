package dev.slipway.plugin.ecr;

import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import java.util.Objects;

/**
 * One registry's login, decoded from an ECR token. Its {@code toString} masks the secrets.
 *
 * @param registry the registry host, with port if any, without scheme
 * @param username the user, {@code AWS} for ECR
 * @param password the password
 * @param authorizationToken the token as ECR sent it, base64 of {@code user:password}
 */
record RegistryLogin(String registry, String username, Secret password, Secret authorizationToken) {
  RegistryLogin {
    Objects.requireNonNull(registry, "registry");
    Objects.requireNonNull(username, "username");
    Objects.requireNonNull(password, "password");
    Objects.requireNonNull(authorizationToken, "authorizationToken");
  }

  RegistryCredentials credentials() {
    return new RegistryCredentials(registry, username, password);
  }
}

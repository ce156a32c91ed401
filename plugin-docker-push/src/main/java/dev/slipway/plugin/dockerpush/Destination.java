package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.RegistryCredentials;
import java.util.Optional;

/**
 * Where one job's image goes and with which credentials, as {@link Destinations} decided.
 *
 * @param target the registry, repository and tag pushed to
 * @param credentials the credentials sent to {@code target}'s registry, if any; they belong to it
 * @param credentialsSource for the log and messages: whose credentials, never the password
 */
record Destination(ImageName.Target target, Optional<RegistryCredentials> credentials, String credentialsSource) {
  /** The same registry, repository and credentials, under another tag. */
  Destination withTag(String tag) {
    return new Destination(target.withTag(tag), credentials, credentialsSource);
  }
}

package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.StageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A Docker config directory of one build's own, holding the credentials an earlier stage published
 * ({@code StageKeys.REGISTRY_CREDENTIALS}) for that one registry only: {@code config.json} is
 * exactly {@code {"auths":{"<registry>":{"auth":"<base64 user:password>"}}}}, mode 0600, in a
 * fresh 0700 directory outside the build context. build.sh gets its path as {@code DOCKER_CONFIG};
 * the docker CLI hands the auth to the engine when a {@code FROM} (or {@code --cache-from}) needs
 * it, buildctl reads it for pulls and cache import/export. No credential helper, no other registry,
 * never the worker's own {@code ~/.docker}. The value is in no argument or environment, only in the
 * file, which {@link #close} removes when the build ends.
 */
final class PrivateDockerConfig implements AutoCloseable {
  /** A registry host as image references name it: a DNS name or IPv4 address, or [IPv6]; a port. */
  private static final Pattern REGISTRY =
      Pattern.compile("([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
          + "|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?");

  /** The hosts Docker Hub goes by; the CLIs look its credentials up under the index's URL. */
  private static final Set<String> DOCKER_HUB = Set.of("docker.io", "index.docker.io", "registry-1.docker.io");

  static final String DOCKER_HUB_KEY = "https://index.docker.io/v1/";

  private final Path dir;

  private PrivateDockerConfig(Path dir) {
    this.dir = dir;
  }

  /** Why {@code credentials} cannot be written as a Docker config, or empty when they can. */
  static Optional<String> problem(RegistryCredentials credentials) {
    String registry = credentials.registry();
    if (!REGISTRY.matcher(registry).matches()) {
      return Optional.of("the registry credentials published by an earlier stage are for '"
          + ImageReference.printable(registry) + "', which is not a registry host[:port] such as"
          + " 123456789012.dkr.ecr.eu-west-1.amazonaws.com or 127.0.0.1:5000 (no scheme, no path)");
    }
    if (credentials.username().contains(":") || credentials.username().chars().anyMatch(Character::isISOControl)) {
      return Optional.of("the user name of the registry credentials for " + registry + " has a ':' or a"
          + " control character, which Docker's user:password auth cannot carry");
    }
    return Optional.empty();
  }

  /** The key of {@code auths} the CLIs look the registry up under. */
  static String authsKey(String registry) {
    return DOCKER_HUB.contains(registry) ? DOCKER_HUB_KEY : registry;
  }

  /** {@code base64(user:password)}, the value of {@code auth}: a secret like the password. */
  static String auth(RegistryCredentials credentials) {
    return Base64.getEncoder().encodeToString(
        (credentials.username() + ":" + credentials.password().reveal()).getBytes(StandardCharsets.UTF_8));
  }

  /** The whole {@code config.json}; the key and the base64 need no JSON escaping. */
  static String json(RegistryCredentials credentials) {
    return "{\"auths\":{\"" + authsKey(credentials.registry()) + "\":{\"auth\":\"" + auth(credentials) + "\"}}}";
  }

  /**
   * Writes the config.
   *
   * @param credentials checked by {@link #problem}
   * @param makeDir makes the new, empty 0700 directory (the stage records it for crash recovery
   *     first)
   * @throws StageException {@link BuildkitErrors#TMP_FAILED} when it cannot be written; nothing is
   *     left behind then
   */
  static PrivateDockerConfig write(RegistryCredentials credentials, BuildSecrets.DirMaker makeDir)
      throws StageException {
    Path dir = makeDir.make();
    try (SeekableByteChannel out = Files.newByteChannel(dir.resolve("config.json"),
        Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
      ByteBuffer bytes = ByteBuffer.wrap(json(credentials).getBytes(StandardCharsets.UTF_8));
      while (bytes.hasRemaining()) {
        out.write(bytes);
      }
    } catch (IOException | UnsupportedOperationException e) {
      BuildLeftovers.deleteTree(dir);
      // The exception's class only: its message could quote a path, never the value, but be sure.
      throw new StageException(BuildkitErrors.TMP_FAILED, "cannot write the build's registry credentials"
          + " for " + credentials.registry() + " to " + dir + ": " + e.getClass().getSimpleName(), e);
    }
    return new PrivateDockerConfig(dir);
  }

  /** The directory, build.sh's {@code DOCKER_CONFIG}. */
  Path dir() {
    return dir;
  }

  /** Removes the file and its directory. Never throws; safe to call more than once. */
  @Override
  public void close() {
    BuildLeftovers.deleteTree(dir);
  }
}

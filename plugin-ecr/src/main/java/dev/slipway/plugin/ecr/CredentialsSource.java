package dev.slipway.plugin.ecr;

import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Where the stage's AWS credentials come from, decided once at start-up from the worker's
 * environment ({@link WorkerEnvironment#env}, which includes the {@code .env} file).
 *
 * <p>When {@code AWS_ACCESS_KEY_ID} and {@code AWS_SECRET_ACCESS_KEY} (and {@code
 * AWS_SESSION_TOKEN}, for temporary keys) are set there, those keys are used as they are. Otherwise
 * the AWS SDK's default chain finds credentials: system properties, the process environment,
 * web identity, the profile named by {@code AWS_PROFILE} (also from {@code .env}), the container's
 * or the instance's role.
 *
 * @param accessKeyId the static access key id, if set
 * @param secretAccessKey its secret key; present exactly when {@code accessKeyId} is
 * @param sessionToken the session token of temporary static keys, if set
 * @param profile the profile for the default chain, if {@code AWS_PROFILE} is set
 */
public record CredentialsSource(
    Optional<String> accessKeyId,
    Optional<Secret> secretAccessKey,
    Optional<Secret> sessionToken,
    Optional<String> profile) {

  public static final String ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID";
  public static final String SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY";
  public static final String SESSION_TOKEN = "AWS_SESSION_TOKEN";
  public static final String PROFILE = "AWS_PROFILE";

  public CredentialsSource {
    Objects.requireNonNull(accessKeyId, "accessKeyId");
    Objects.requireNonNull(secretAccessKey, "secretAccessKey");
    Objects.requireNonNull(sessionToken, "sessionToken");
    Objects.requireNonNull(profile, "profile");
    if (accessKeyId.isPresent() != secretAccessKey.isPresent()) {
      throw new IllegalArgumentException("an access key id needs its secret key, and only then");
    }
  }

  /** Static keys. */
  public static CredentialsSource keys(String accessKeyId, String secretAccessKey) {
    return new CredentialsSource(
        Optional.of(accessKeyId), Optional.of(Secret.of(secretAccessKey)), Optional.empty(), Optional.empty());
  }

  /** The SDK's default chain. */
  public static CredentialsSource defaultChain() {
    return new CredentialsSource(Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
  }

  /**
   * Reads the environment. A key id without its secret key (or the other way round) is a problem,
   * added to {@code problems}, since the SDK would fail on it at the first job.
   */
  static CredentialsSource from(WorkerEnvironment environment, List<String> problems) {
    Optional<String> keyId = nonBlank(environment, ACCESS_KEY_ID);
    Optional<String> secret = nonBlank(environment, SECRET_ACCESS_KEY);
    Optional<String> session = nonBlank(environment, SESSION_TOKEN);
    Optional<String> profile = nonBlank(environment, PROFILE);
    if (keyId.isPresent() != secret.isPresent()) {
      problems.add(
          (keyId.isPresent() ? ACCESS_KEY_ID : SECRET_ACCESS_KEY)
              + " is set in the worker's environment but "
              + (keyId.isPresent() ? SECRET_ACCESS_KEY : ACCESS_KEY_ID)
              + " is not; set both (and "
              + SESSION_TOKEN
              + " for temporary keys), or neither to use a profile or the instance's role");
      return defaultChain();
    }
    if (keyId.isEmpty() && session.isPresent()) {
      problems.add(
          SESSION_TOKEN
              + " is set in the worker's environment without "
              + ACCESS_KEY_ID
              + " and "
              + SECRET_ACCESS_KEY
              + "; set all three, or none");
    }
    return new CredentialsSource(
        keyId, secret.map(Secret::of), keyId.isPresent() ? session.map(Secret::of) : Optional.empty(), profile);
  }

  /** Whether static keys are used, rather than the SDK's default chain. */
  public boolean isStatic() {
    return accessKeyId.isPresent();
  }

  /** The secrets to keep out of every message: the secret key and the session token. */
  public List<Secret> secrets() {
    return java.util.stream.Stream.concat(secretAccessKey.stream(), sessionToken.stream()).toList();
  }

  /** Where the credentials come from, for messages; names the key id only by its ends. */
  public String describe() {
    if (accessKeyId.isPresent()) {
      return "access key "
          + maskKeyId(accessKeyId.get())
          + " from "
          + ACCESS_KEY_ID
          + "/"
          + SECRET_ACCESS_KEY
          + (sessionToken.isPresent() ? "/" + SESSION_TOKEN : "")
          + " in the worker's environment";
    }
    return "the AWS SDK's default credential chain"
        + profile.map(p -> " (profile '" + p + "' from " + PROFILE + ")").orElse("")
        + " (environment, profile, container or instance role)";
  }

  /**
   * {@code AKIA…WXYZ}: the prefix tells long-term ({@code AKIA}) from temporary ({@code ASIA})
   * keys, the end tells keys apart; an id is not a secret, but it need not be spread either.
   */
  public static String maskKeyId(String keyId) {
    return keyId.length() < 12 ? "…" : keyId.substring(0, 4) + "…" + keyId.substring(keyId.length() - 4);
  }

  private static Optional<String> nonBlank(WorkerEnvironment environment, String name) {
    return environment.env(name).map(String::trim).filter(v -> !v.isEmpty());
  }
}

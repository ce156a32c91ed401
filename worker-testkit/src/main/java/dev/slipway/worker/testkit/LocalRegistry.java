package dev.slipway.worker.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The OCI registry that tests push to, as {@code scripts/test-services.sh up} starts it: the CNCF
 * distribution registry on {@code 127.0.0.1}, plain HTTP, htpasswd basic auth with the users
 * {@code slipway} and {@code AWS}. Found through {@code SLIPWAY_REGISTRY},
 * {@code SLIPWAY_REGISTRY_USER}, {@code SLIPWAY_REGISTRY_PASSWORD} and
 * {@code SLIPWAY_REGISTRY_AWS_PASSWORD}, else through the {@code env} file in
 * {@code $SLIPWAY_STATE_DIR} (default {@code /tmp/slipway-services}). It does not depend on JUnit:
 *
 * <pre>{@code
 * static final LocalRegistry REGISTRY = LocalRegistry.fromEnvironment();
 *
 * @BeforeAll
 * static void registry() {
 *   Optional<String> missing = REGISTRY.skipReason();
 *   Assumptions.assumeTrue(missing.isEmpty(), () -> missing.orElseThrow());
 * }
 * }</pre>
 *
 * <p>{@link #skipReason()} throws instead when {@code SLIPWAY_REQUIRE_DOCKER=1}, like {@link
 * DockerEngine#skipReason()}. Its own requests use {@link HttpURLConnection} without a proxy and go
 * to the registry's loopback address only.
 */
public final class LocalRegistry {
  /** What a manifest request accepts: Docker's and OCI's manifests and indexes. */
  public static final String MANIFEST_ACCEPT =
      "application/vnd.docker.distribution.manifest.v2+json, "
          + "application/vnd.docker.distribution.manifest.list.v2+json, "
          + "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

  private static final int TIMEOUT_MILLIS = 5_000;

  private final Optional<String> address;
  private final String user;
  private final String password;
  private final String awsPassword;
  private final String origin;
  private volatile Optional<String> problem;

  private LocalRegistry(
      Optional<String> address, String user, String password, String awsPassword, String origin) {
    this.address = address;
    this.user = user;
    this.password = password;
    this.awsPassword = awsPassword;
    this.origin = origin;
  }

  /** The registry the environment names, else the one in {@code $SLIPWAY_STATE_DIR/env}. */
  public static LocalRegistry fromEnvironment() {
    Map<String, String> env = System.getenv();
    if (!env.getOrDefault("SLIPWAY_REGISTRY", "").isBlank()) {
      return new LocalRegistry(
          Optional.of(env.get("SLIPWAY_REGISTRY").strip()),
          env.getOrDefault("SLIPWAY_REGISTRY_USER", "slipway"),
          env.getOrDefault("SLIPWAY_REGISTRY_PASSWORD", ""),
          env.getOrDefault("SLIPWAY_REGISTRY_AWS_PASSWORD", ""),
          "SLIPWAY_REGISTRY");
    }
    Path file = DockerEngine.stateDir().resolve("env");
    Map<String, String> values = ServicesEnvFile.read(file);
    String registry = values.getOrDefault("SLIPWAY_REGISTRY", "").strip();
    return new LocalRegistry(
        registry.isEmpty() ? Optional.empty() : Optional.of(registry),
        values.getOrDefault("SLIPWAY_REGISTRY_USER", "slipway"),
        values.getOrDefault("SLIPWAY_REGISTRY_PASSWORD", ""),
        values.getOrDefault("SLIPWAY_REGISTRY_AWS_PASSWORD", ""),
        file.toString());
  }

  /** {@code 127.0.0.1:<port>}, the host part of image references. */
  public String address() {
    return address.orElseThrow(() -> new IllegalStateException(unavailableReason().orElse("no registry")));
  }

  /** The htpasswd user for ordinary pushes, {@code slipway}. */
  public String user() {
    return user;
  }

  /** {@link #user()}'s password. */
  public String password() {
    return password;
  }

  /** The password of the user {@code AWS}, the user name ECR tokens carry. */
  public String awsPassword() {
    return awsPassword;
  }

  /**
   * Why the registry cannot be used, or empty when {@code /v2/} answers 401 (auth on). Asks once
   * and remembers the answer.
   */
  public Optional<String> unavailableReason() {
    Optional<String> known = problem;
    if (known == null) {
      known = probe();
      problem = known;
    }
    return known;
  }

  /**
   * Why tests that need the registry should be skipped, or empty when they can run.
   *
   * @throws IllegalStateException when it is unavailable and {@link DockerEngine#required()}
   */
  public Optional<String> skipReason() {
    Optional<String> reason = unavailableReason();
    if (reason.isPresent() && DockerEngine.required()) {
      throw new IllegalStateException(
          reason.get() + " (SLIPWAY_REQUIRE_DOCKER=1: tests that need the registry must run here)");
    }
    return reason;
  }

  private Optional<String> probe() {
    String hint = "; start it with `scripts/test-services.sh up`";
    if (address.isEmpty()) {
      return Optional.of("no registry for tests: SLIPWAY_REGISTRY is unset and " + origin + " names none" + hint);
    }
    if (password.isEmpty()) {
      return Optional.of("no password for the registry user " + user + " in " + origin + hint);
    }
    try {
      int status = request("GET", "/v2/", Optional.empty()).status();
      if (status != 401) {
        return Optional.of("the registry at " + address.get() + " answers /v2/ with " + status
            + " instead of 401 (htpasswd auth)" + hint);
      }
      int authed = request("GET", "/v2/", Optional.of(user + ":" + password)).status();
      if (authed != 200) {
        return Optional.of("the registry at " + address.get() + " refuses " + user + "'s password (HTTP "
            + authed + "); was " + origin + " written by another `up`?" + hint);
      }
    } catch (IOException e) {
      return Optional.of("the registry at " + address.get() + " (from " + origin + ") does not answer: " + e + hint);
    }
    return Optional.empty();
  }

  /**
   * The digest the registry serves for {@code repository:reference} ({@code Docker-Content-Digest}
   * of a HEAD of the manifest, as {@link #user()}), or empty when it has no such manifest.
   */
  public Optional<String> manifestDigest(String repository, String reference) throws IOException {
    Response r = request("HEAD", "/v2/" + repository + "/manifests/" + reference, Optional.of(user + ":" + password));
    if (r.status() == 404) {
      return Optional.empty();
    }
    if (r.status() != 200) {
      throw new IOException("HEAD manifest " + repository + ":" + reference + " answered HTTP " + r.status());
    }
    return Optional.ofNullable(r.headers().get("docker-content-digest"));
  }

  /**
   * Sends a request to the registry.
   *
   * @param method e.g. {@code GET}, {@code HEAD}, {@code DELETE}
   * @param path e.g. {@code /v2/_catalog}
   * @param userAndPassword {@code user:password} for basic auth, or empty
   */
  public Response request(String method, String path, Optional<String> userAndPassword) throws IOException {
    URL url = new URL("http://" + address() + path);
    HttpURLConnection c = (HttpURLConnection) url.openConnection(Proxy.NO_PROXY);
    try {
      c.setRequestMethod(method);
      c.setConnectTimeout(TIMEOUT_MILLIS);
      c.setReadTimeout(TIMEOUT_MILLIS);
      c.setInstanceFollowRedirects(false);
      c.setRequestProperty("Accept", MANIFEST_ACCEPT);
      userAndPassword.ifPresent(
          up -> c.setRequestProperty(
              "Authorization", "Basic " + Base64.getEncoder().encodeToString(up.getBytes(StandardCharsets.UTF_8))));
      int status = c.getResponseCode();
      Map<String, String> headers = new LinkedHashMap<>();
      c.getHeaderFields().forEach((k, v) -> {
        if (k != null && !v.isEmpty()) {
          headers.put(k.toLowerCase(java.util.Locale.ROOT), v.get(0));
        }
      });
      byte[] body = new byte[0];
      if (!method.equals("HEAD")) {
        InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
        if (in != null) {
          try (in) {
            body = in.readAllBytes();
          }
        }
      }
      return new Response(status, Map.copyOf(headers), new String(body, StandardCharsets.UTF_8));
    } finally {
      c.disconnect();
    }
  }

  /**
   * A registry's answer.
   *
   * @param status the HTTP status
   * @param headers the headers, names in lower case, first value each
   * @param body the body as text (empty for HEAD)
   */
  public record Response(int status, Map<String, String> headers, String body) {}

  @Override
  public String toString() {
    // Never the passwords.
    return "LocalRegistry[" + address.orElse("none") + ", user " + user + ", from " + origin + "]";
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.RegistryCredentials;
import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLEncoder;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The little of the registry's HTTP API (OCI distribution spec) the stage needs: the digest the
 * registry serves for a tag. Speaks the two ways registries authenticate: Basic (the distribution
 * registry with htpasswd) and the token flow (a 401 with {@code Bearer realm=...}, as ECR, Docker
 * Hub and most hosted registries do). Plain HTTP for loopback registries and the configured
 * insecure ones, HTTPS for every other. Credentials go to the registry's own host, and to a token
 * service on another host only when {@code token-realm-hosts} lists it.
 */
final class RegistryApi implements RegistryClient {
  /** What the stage accepts as a manifest: single-platform images and indexes, Docker's and OCI's. */
  static final String ACCEPT =
      String.join(
          ", ",
          "application/vnd.docker.distribution.manifest.v2+json",
          "application/vnd.docker.distribution.manifest.list.v2+json",
          "application/vnd.oci.image.manifest.v1+json",
          "application/vnd.oci.image.index.v1+json");

  private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
  private static final Pattern CHALLENGE_PARAM = Pattern.compile("([A-Za-z_]+)=\"([^\"]*)\"");
  /** A JSON string field; group 1 is its raw (escaped) value. */
  private static final String JSON_STRING_FIELD = "\"%s\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"";

  private final HttpClient http;
  private final Duration requestTimeout;
  private final Set<String> insecureRegistries;
  private final Set<String> tokenRealmHosts;

  /**
   * @param requestTimeout how long one request may take
   * @param insecureRegistries registries spoken to over plain HTTP besides loopback, canonical form
   * @param tokenRealmHosts hosts besides the registry's own that may receive its credentials as its
   *     token service ({@code token-realm-hosts})
   */
  RegistryApi(Duration requestTimeout, Set<String> insecureRegistries, Set<String> tokenRealmHosts) {
    this(
        HttpClient.newBuilder()
            .connectTimeout(requestTimeout)
            // Never follow: a redirect would carry the credentials to wherever it points.
            .followRedirects(HttpClient.Redirect.NEVER)
            .build(),
        requestTimeout,
        insecureRegistries,
        tokenRealmHosts);
  }

  RegistryApi(
      HttpClient http, Duration requestTimeout, Set<String> insecureRegistries, Set<String> tokenRealmHosts) {
    this.http = http;
    this.requestTimeout = requestTimeout;
    this.insecureRegistries = Set.copyOf(insecureRegistries);
    this.tokenRealmHosts =
        tokenRealmHosts.stream().map(h -> h.toLowerCase(Locale.ROOT)).collect(Collectors.toUnmodifiableSet());
  }

  /** A failure of the registry's API, sorted like the engine's push failures. */
  static final class RegistryException extends Exception {
    private static final long serialVersionUID = 1L;
    private final PushFailures.Kind kind;

    RegistryException(PushFailures.Kind kind, String message) {
      super(message);
      this.kind = kind;
    }

    RegistryException(PushFailures.Kind kind, String message, Throwable cause) {
      super(message, cause);
      this.kind = kind;
    }

    PushFailures.Kind kind() {
      return kind;
    }
  }

  /**
   * The digest the registry serves for {@code target}'s tag: its {@code Docker-Content-Digest}
   * header on a HEAD of the manifest, else (a registry that sends none on HEAD) the header or the
   * SHA-256 of the body of a GET.
   *
   * @return the digest, or empty when the registry has no manifest under the tag (404)
   */
  @Override
  public Optional<String> manifestDigest(ImageName.Target target, Optional<RegistryCredentials> credentials)
      throws RegistryException, InterruptedException {
    URI uri = manifestUri(target);
    Optional<String> authorization = Optional.empty();
    HttpResponse<byte[]> response = send("HEAD", uri, authorization);
    if (response.statusCode() == 401) {
      authorization = Optional.of(authorize(target, response, credentials));
      response = send("HEAD", uri, authorization);
    }
    int status = response.statusCode();
    if (status == 404) {
      return Optional.empty();
    }
    if (status != 200) {
      throw failure(status, "HEAD " + uri, response);
    }
    Optional<String> digest = header(response, "Docker-Content-Digest");
    if (digest.isEmpty()) {
      HttpResponse<byte[]> get = send("GET", uri, authorization);
      if (get.statusCode() != 200) {
        throw failure(get.statusCode(), "GET " + uri, get);
      }
      digest = Optional.of(header(get, "Docker-Content-Digest").orElseGet(() -> sha256(responseBody(get))));
    }
    String d = digest.get().strip();
    if (!DIGEST.matcher(d).matches()) {
      throw new RegistryException(
          PushFailures.Kind.FAILED, "the registry answered a digest that is not sha256:<64 hex>: '" + d + "'");
    }
    return Optional.of(d);
  }

  @Override
  public void ping(ImageName.Target target, Optional<RegistryCredentials> credentials)
      throws RegistryException, InterruptedException {
    URI manifest = manifestUri(target);
    URI uri = manifest.resolve("/v2/");
    HttpResponse<byte[]> response = send("GET", uri, Optional.empty());
    if (response.statusCode() == 401) {
      response = send("GET", uri, Optional.of(authorize(target, response, credentials)));
    }
    if (response.statusCode() != 200) {
      throw failure(response.statusCode(), "GET " + uri, response);
    }
  }

  /** {@code http(s)://host/v2/<repository>/manifests/<tag>}. */
  URI manifestUri(ImageName.Target target) {
    String registry = ImageName.canonicalRegistry(target.registry());
    String host = registry.equals("docker.io") ? "registry-1.docker.io" : target.registry();
    String repository = target.repository();
    if (registry.equals("docker.io") && !repository.contains("/")) {
      repository = "library/" + repository;
    }
    return URI.create(scheme(target.registry()) + "://" + host + "/v2/" + repository + "/manifests/" + target.tag());
  }

  /** {@code http} for loopback and the configured insecure registries, {@code https} otherwise. */
  String scheme(String registry) {
    String canonical = ImageName.canonicalRegistry(registry);
    String host = hostOf(canonical);
    if (insecureRegistries.contains(canonical) || insecureRegistries.contains(host) || isLoopback(host)) {
      return "http";
    }
    return "https";
  }

  private static String hostOf(String hostAndPort) {
    if (hostAndPort.startsWith("[")) {
      int end = hostAndPort.indexOf(']');
      return end > 0 ? hostAndPort.substring(0, end + 1) : hostAndPort;
    }
    int colon = hostAndPort.lastIndexOf(':');
    return colon >= 0 ? hostAndPort.substring(0, colon) : hostAndPort;
  }

  /** Loopback by its literal form only: a name that merely resolves to 127.0.0.1 gets https. */
  static boolean isLoopback(String host) {
    String h = host.toLowerCase(Locale.ROOT);
    if (h.equals("localhost")) {
      return true;
    }
    if (h.matches("127(\\.\\d{1,3}){3}") || h.equals("[::1]")) {
      try {
        return InetAddress.getByName(h.replace("[", "").replace("]", "")).isLoopbackAddress();
      } catch (UnknownHostException e) {
        return false;
      }
    }
    return false;
  }

  /** The Authorization header value that answers the registry's challenge. */
  private String authorize(
      ImageName.Target target, HttpResponse<byte[]> challenged, Optional<RegistryCredentials> credentials)
      throws RegistryException, InterruptedException {
    String challenge = header(challenged, "WWW-Authenticate").orElse("").strip();
    String scheme = challenge.contains(" ") ? challenge.substring(0, challenge.indexOf(' ')) : challenge;
    Map<String, String> params = new LinkedHashMap<>();
    Matcher m = CHALLENGE_PARAM.matcher(challenge);
    while (m.find()) {
      params.put(m.group(1).toLowerCase(Locale.ROOT), m.group(2));
    }
    if (scheme.equalsIgnoreCase("Basic")) {
      if (credentials.isEmpty()) {
        throw new RegistryException(
            PushFailures.Kind.DENIED, "the registry asks for credentials (Basic) to read the manifest, and there are none");
      }
      return basic(credentials.get());
    }
    if (scheme.equalsIgnoreCase("Bearer") && params.containsKey("realm")) {
      return "Bearer " + token(target, params, credentials);
    }
    throw new RegistryException(
        PushFailures.Kind.DENIED,
        "the registry answered 401 with a challenge the stage cannot answer: '"
            + (challenge.isEmpty() ? "(no WWW-Authenticate header)" : challenge) + "'");
  }

  /**
   * Whether a token realm on {@code realmHost} may receive the credentials of the registry on
   * {@code registryHost}: the very same host (letter case aside), or one listed in {@code
   * token-realm-hosts}. Sharing a parent domain is not enough: {@code evil.amazonaws.com} is not
   * {@code 123.dkr.ecr.us-east-1.amazonaws.com}'s, and anyone may own a sibling name under a
   * hosting provider's domain.
   */
  boolean realmMayReceiveCredentials(String realmHost, String registryHost) {
    return realmHost.equalsIgnoreCase(registryHost) || tokenRealmHosts.contains(realmHost.toLowerCase(Locale.ROOT));
  }

  /**
   * As {@link #realmMayReceiveCredentials(String, String)}, and on the registry's own host only on
   * its own port: another port of the same host is another server ({@code registry:8443} is not
   * {@code registry:443}'s). A listed host is trusted on any port: the operator named it.
   */
  boolean realmMayReceiveCredentials(URI realm, URI registry) {
    String realmHost = realm.getHost() == null ? "" : realm.getHost();
    String registryHost = registry.getHost() == null ? "" : registry.getHost();
    if (realmHost.equalsIgnoreCase(registryHost)) {
      return effectivePort(realm) == effectivePort(registry);
    }
    return tokenRealmHosts.contains(realmHost.toLowerCase(Locale.ROOT));
  }

  private static int effectivePort(URI uri) {
    return uri.getPort() == -1 ? defaultPort(uri) : uri.getPort();
  }

  private static int defaultPort(URI uri) {
    return "http".equalsIgnoreCase(uri.getScheme()) ? 80 : 443;
  }

  /** The token flow: GET realm?service=...&scope=repository:<repo>:pull, with Basic if any. */
  private String token(
      ImageName.Target target, Map<String, String> params, Optional<RegistryCredentials> credentials)
      throws RegistryException, InterruptedException {
    URI realm;
    try {
      realm = new URI(params.get("realm"));
    } catch (URISyntaxException e) {
      throw new RegistryException(PushFailures.Kind.FAILED, "the registry's token realm is not a URI: " + e.getMessage());
    }
    String realmScheme = realm.getScheme() == null ? "" : realm.getScheme().toLowerCase(Locale.ROOT);
    if (!realmScheme.equals("https") && !realmScheme.equals("http")) {
      throw new RegistryException(PushFailures.Kind.FAILED, "the registry's token realm " + realm + " is not http(s)");
    }
    String realmHost = realm.getHost() == null ? "" : realm.getHost();
    String realmAuthority = realm.getPort() > 0 ? realmHost + ":" + realm.getPort() : realmHost;
    if (realmScheme.equals("http") && credentials.isPresent() && scheme(realmAuthority).equals("https")) {
      throw new RegistryException(
          PushFailures.Kind.FAILED,
          "the registry's token realm " + realm + " is plain http; the credentials are not sent there"
              + " (list " + realmAuthority + " in insecure-registries if that is intended)");
    }
    // The credentials go to the registry's own host, or to a token service the operator listed
    // (Docker Hub's auth.docker.io for registry-1.docker.io, say): a registry, or whoever answers
    // in its name, must not be able to name any other server in its challenge and be sent the
    // password. Refused rather than asked anonymously, so that the operator sees why.
    String registryHost = manifestUri(target).getHost();
    if (credentials.isPresent() && !realmMayReceiveCredentials(realm, manifestUri(target))) {
      throw new RegistryException(
          PushFailures.Kind.FAILED,
          "the registry " + registryHost + " sends its clients to the token service " + realm + " on another host, "
              + realmHost + "; the credentials go only to the registry's own host and to the hosts in"
              + " worker.stages.docker-push.token-realm-hosts. If " + realmHost + " is this registry's token"
              + " service, add it there: token-realm-hosts = [\"" + realmHost + "\"]");
    }
    String repository = manifestUri(target).getPath().replaceFirst("^/v2/", "").replaceFirst("/manifests/[^/]+$", "");
    String scope = "repository:" + repository + ":pull";
    StringBuilder query = new StringBuilder();
    if (params.containsKey("service")) {
      query.append("service=").append(URLEncoder.encode(params.get("service"), StandardCharsets.UTF_8)).append('&');
    }
    query.append("scope=").append(URLEncoder.encode(scope, StandardCharsets.UTF_8));
    String base = realm.toString();
    URI uri = URI.create(base + (base.contains("?") ? "&" : "?") + query);
    HttpResponse<byte[]> response = send("GET", uri, credentials.map(RegistryApi::basic));
    if (response.statusCode() != 200) {
      throw failure(response.statusCode(), "token request to " + realm, response);
    }
    String json = new String(responseBody(response), StandardCharsets.UTF_8);
    // As Docker reads it: "token", else the OAuth2 name "access_token".
    for (String field : new String[] {"token", "access_token"}) {
      Matcher m = Pattern.compile(String.format(JSON_STRING_FIELD, field)).matcher(json);
      if (m.find() && !m.group(1).isEmpty()) {
        return m.group(1).replace("\\/", "/").replace("\\\"", "\"").replace("\\\\", "\\");
      }
    }
    throw new RegistryException(
        PushFailures.Kind.FAILED, "the token service " + realm + " answered no token (no 'token' or 'access_token')");
  }

  private static String basic(RegistryCredentials credentials) {
    String pair = credentials.username() + ":" + credentials.password().reveal();
    return "Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8));
  }

  private HttpResponse<byte[]> send(String method, URI uri, Optional<String> authorization)
      throws RegistryException, InterruptedException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(uri)
            .timeout(requestTimeout)
            .header("Accept", ACCEPT)
            .header("User-Agent", "slipway-docker-push")
            .method(method, HttpRequest.BodyPublishers.noBody());
    authorization.ifPresent(a -> request.header("Authorization", a));
    try {
      return http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException e) {
      String why = describe(e);
      // Every I/O failure is worth another try: a registry that just took a push is there.
      throw new RegistryException(PushFailures.Kind.TRANSIENT, method + " " + uri + " failed: " + why, e);
    }
  }

  /** An I/O failure in words; the JDK's connect failures often come without a message. */
  private static String describe(IOException e) {
    if (e.getMessage() != null && !e.getMessage().isBlank()) {
      return e.getMessage();
    }
    if (e instanceof java.net.http.HttpConnectTimeoutException) {
      return "connect timed out";
    }
    if (e instanceof java.net.ConnectException) {
      return "connection refused";
    }
    return e.getClass().getSimpleName();
  }

  private static RegistryException failure(int status, String what, HttpResponse<byte[]> response) {
    String body = new String(responseBody(response), StandardCharsets.UTF_8).strip();
    if (body.length() > 300) {
      body = body.substring(0, 300) + "...";
    }
    return new RegistryException(
        PushFailures.ofStatus(status),
        what + " answered HTTP " + status + (body.isEmpty() ? "" : ": " + body.replaceAll("\\s+", " ")));
  }

  private static byte[] responseBody(HttpResponse<byte[]> response) {
    return response.body() == null ? new byte[0] : response.body();
  }

  private static Optional<String> header(HttpResponse<?> response, String name) {
    return response.headers().firstValue(name);
  }

  private static String sha256(byte[] body) {
    try {
      return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }
}

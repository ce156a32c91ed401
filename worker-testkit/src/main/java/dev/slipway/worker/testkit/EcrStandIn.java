package dev.slipway.worker.testkit;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A stand-in for Amazon ECR's API, for tests: an HTTP server on 127.0.0.1 (ephemeral port) that
 * speaks ECR's JSON 1.1 protocol for {@code GetAuthorizationToken}, so that the real AWS SDK,
 * pointed at it with {@code endpointOverride}, does everything it does against AWS: signing,
 * retries, error mapping.
 *
 * <p>Every request must be SigV4-signed ({@code Authorization: AWS4-HMAC-SHA256 Credential=AKID/
 * date/region/ecr/aws4_request, SignedHeaders=..., Signature=...} and {@code X-Amz-Date}), and the
 * signature is verified with the configured secret key: canonical request, string to sign and the
 * HMAC chain, as AWS does. Failures answer as AWS would, in its error shape ({@code 400} with
 * {@code {"__type":"...","message":"..."}}): an unknown access key gets {@code
 * UnrecognizedClientException}, a wrong signature (wrong secret key) {@code
 * InvalidSignatureException}, a missing or malformed signature {@code
 * MissingAuthenticationTokenException} / {@code IncompleteSignatureException}. Only the signature's
 * freshness ({@code X-Amz-Date} within 15 minutes) is not checked.
 *
 * <p>A signed request gets {@code {"authorizationData":[{"authorizationToken":"<base64 of
 * user:password>","expiresAt":<epoch seconds>,"proxyEndpoint":"https://<registry host>"}]}}: one
 * entry, or one per registry id the request names. The {@link Mode} switches to failures: access
 * denied, HTTP 500, empty or undecodable answers, or no answer at all.
 *
 * <pre>{@code
 * try (EcrStandIn ecr = EcrStandIn.builder()
 *         .registryHost("127.0.0.1:5000").password("registry-password").start()) {
 *   // EcrClient.builder().endpointOverride(ecr.endpoint()).region(Region.of(ecr.region()))
 *   //     .credentialsProvider(StaticCredentialsProvider.create(
 *   //         AwsBasicCredentials.create(ecr.accessKeyId(), ecr.secretAccessKey())))
 *   assertEquals(1, ecr.tokensIssued());
 * }
 * }</pre>
 *
 * <p>The server records every request ({@link #requests()}) but never a signature or a secret.
 */
public final class EcrStandIn implements AutoCloseable {
  /** The JSON 1.1 target of the one operation the stand-in answers. */
  public static final String TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

  static {
    // The JDK's HTTP server leaves Nagle's algorithm on, and with the client's delayed ACKs every
    // answer on a kept-alive connection waited about 40 ms (48 ms median per call here, 4 ms with
    // it off). ECR does not behave so; tests should not measure it. The property is read once, when
    // the JVM's first HTTP server starts, and makes every JDK HTTP server of the JVM set
    // TCP_NODELAY; a value set on the command line wins.
    if (System.getProperty("sun.net.httpserver.nodelay") == null) {
      System.setProperty("sun.net.httpserver.nodelay", "true");
    }
  }

  static final String CONTENT_TYPE = "application/x-amz-json-1.1";
  private static final String ALGORITHM = "AWS4-HMAC-SHA256";
  private static final Pattern AUTHORIZATION =
      Pattern.compile(
          "AWS4-HMAC-SHA256\\s+Credential=([^/,\\s]+)/(\\d{8})/([^/,\\s]+)/([^/,\\s]+)/aws4_request"
              + "\\s*,\\s*SignedHeaders=([a-z0-9;._-]+)\\s*,\\s*Signature=([0-9a-f]{64})\\s*");
  private static final Pattern AMZ_DATE = Pattern.compile("(\\d{8})T\\d{6}Z");
  private static final Pattern REGISTRY_IDS =
      Pattern.compile("\"registryIds\"\\s*:\\s*\\[([^\\]]*)\\]");
  private static final Pattern JSON_STRING = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"");

  /** How the stand-in answers a correctly signed request. */
  public enum Mode {
    /** A token for every registry asked for, or for the default registry. */
    OK,
    /** {@code 400 AccessDeniedException}: the caller may not call GetAuthorizationToken. */
    ACCESS_DENIED,
    /** {@code 500 ServerException}, which the SDK retries. */
    SERVER_ERROR,
    /** {@code 200} with {@code "authorizationData":[]}. */
    EMPTY_AUTHORIZATION_DATA,
    /** {@code 200} with a token that is not base64 of {@code user:password}. */
    UNDECODABLE_TOKEN,
    /** {@code 200} with a body that is not JSON at all. */
    NOT_JSON,
    /** Accepts the request and never answers, until the stand-in closes. */
    HANG
  }

  /**
   * One request as the stand-in saw it; never holds a signature or a secret.
   *
   * @param target the {@code X-Amz-Target} header, empty if none
   * @param accessKeyId the access key id of the signature's credential scope, empty if unsigned
   * @param region the region of the credential scope, empty if unsigned
   * @param service the service of the credential scope, empty if unsigned
   * @param signedHeaders the headers the signature covers, in order
   * @param sessionToken whether an {@code X-Amz-Security-Token} header came along (and was signed)
   * @param registryIds the registry ids the body asked for
   * @param status the HTTP status answered; 0 while unanswered
   * @param errorType the {@code __type} of an error answer, empty otherwise
   */
  public record Request(
      String target,
      String accessKeyId,
      String region,
      String service,
      List<String> signedHeaders,
      boolean sessionToken,
      List<String> registryIds,
      int status,
      String errorType) {
    public Request {
      signedHeaders = List.copyOf(signedHeaders);
      registryIds = List.copyOf(registryIds);
    }
  }

  private final HttpServer server;
  private final ExecutorService executor;
  private final Clock clock;
  private final String region;
  private final String accessKeyId;
  private final String secretAccessKey;
  private final Optional<String> sessionToken;
  private final String defaultRegistryHost;
  private final Map<String, String> registryHosts;
  private final List<Request> requests = new CopyOnWriteArrayList<>();
  private final AtomicInteger tokensIssued = new AtomicInteger();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final CountDownLatch closed = new CountDownLatch(1);
  private volatile Mode mode;
  private volatile String username;
  private volatile String password;
  private volatile Duration tokenLifetime;

  private EcrStandIn(Builder builder) throws IOException {
    this.clock = builder.clock;
    this.region = builder.region;
    this.accessKeyId = builder.accessKeyId;
    this.secretAccessKey = builder.secretAccessKey;
    this.sessionToken = Optional.ofNullable(builder.sessionToken);
    this.defaultRegistryHost = builder.registryHost;
    this.registryHosts = Map.copyOf(builder.registryHosts);
    this.mode = builder.mode;
    this.username = builder.username;
    this.password = builder.password;
    this.tokenLifetime = builder.tokenLifetime;
    AtomicInteger threads = new AtomicInteger();
    // Unbounded and daemon, so that a hanging answer never blocks the next request or the JVM.
    this.executor =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "ecr-stand-in-" + threads.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    InetAddress loopback = InetAddress.getByAddress(new byte[] {127, 0, 0, 1});
    this.server = HttpServer.create(new InetSocketAddress(loopback, 0), 50);
    server.setExecutor(executor);
    server.createContext("/", this::handle);
    server.start();
  }

  /** Starts describing a stand-in; every setting has a default. */
  public static Builder builder() {
    return new Builder();
  }

  /** A stand-in with every default: region eu-west-1, registry 127.0.0.1:5000, user AWS. */
  public static EcrStandIn start() {
    return builder().start();
  }

  /** The port the stand-in listens on, at 127.0.0.1. */
  public int port() {
    return server.getAddress().getPort();
  }

  /** The URI to pass as the SDK's {@code endpointOverride}: {@code http://127.0.0.1:PORT}. */
  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + port());
  }

  /** The region requests must be signed for. */
  public String region() {
    return region;
  }

  /** The one access key id the stand-in knows. */
  public String accessKeyId() {
    return accessKeyId;
  }

  /** The secret key that signatures are verified with. */
  public String secretAccessKey() {
    return secretAccessKey;
  }

  /** The registry host handed out when the request names no registry id, or an unknown one. */
  public String registryHost() {
    return defaultRegistryHost;
  }

  /** The user name inside the tokens handed out; {@code AWS}, as ECR's, by default. */
  public String username() {
    return username;
  }

  /** The password inside the tokens handed out. */
  public String password() {
    return password;
  }

  /** The token the stand-in hands out now: base64 of {@code user:password}. */
  public String authorizationToken() {
    return Base64.getEncoder()
        .encodeToString((username + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  /** Answers from now on as {@code mode} says. */
  public void mode(Mode mode) {
    this.mode = Objects.requireNonNull(mode, "mode");
  }

  /** Hands out tokens with this user and password from now on, as ECR does after rotation. */
  public void credentials(String username, String password) {
    this.username = requireNoColon(username);
    this.password = Objects.requireNonNull(password, "password");
  }

  /** Tokens handed out from now on expire this long after they are issued. */
  public void tokenLifetime(Duration lifetime) {
    this.tokenLifetime = requirePositive(lifetime);
  }

  /** How many tokens the stand-in handed out: successful GetAuthorizationToken calls. */
  public int tokensIssued() {
    return tokensIssued.get();
  }

  /** How many GetAuthorizationToken requests arrived, answered successfully or not. */
  public int calls() {
    return (int) requests.stream().filter(r -> r.target().equals(TARGET)).count();
  }

  /** How many requests are being answered right now (hanging ones included). */
  public int inFlight() {
    return inFlight.get();
  }

  /**
   * Waits until at least {@code count} requests are being answered at once, e.g. a hanging one.
   *
   * @return whether that happened within {@code timeout}
   */
  public boolean awaitInFlight(int count, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (inFlight.get() < count) {
      if (System.nanoTime() > end) {
        return false;
      }
      Thread.sleep(5);
    }
    return true;
  }

  /** Every request so far, in the order they were answered (a hanging one once it ends). */
  public List<Request> requests() {
    return List.copyOf(requests);
  }

  /** Stops the server; requests in {@link Mode#HANG} are released and get no answer. */
  @Override
  public void close() {
    closed.countDown();
    server.stop(0);
    executor.shutdownNow();
  }

  private void handle(HttpExchange exchange) throws IOException {
    inFlight.incrementAndGet();
    try (exchange) {
      byte[] body = readAll(exchange.getRequestBody());
      Headers headers = exchange.getRequestHeaders();
      String target = Optional.ofNullable(headers.getFirst("X-Amz-Target")).orElse("");
      Signature signature = Signature.parse(headers.getFirst("Authorization"));
      List<String> registryIds = registryIds(new String(body, StandardCharsets.UTF_8));
      boolean hasSessionToken = headers.containsKey("X-Amz-Security-Token");
      Answer answer = answer(exchange, headers, body, target, signature, registryIds);
      if (answer == null) {
        // HANG: hold the connection until the stand-in closes, then drop it unanswered.
        awaitClose();
        record(target, signature, hasSessionToken, registryIds, 0, "");
        return;
      }
      byte[] bytes = answer.body().getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
      exchange.getResponseHeaders().set("x-amzn-RequestId", UUID.randomUUID().toString());
      if (!answer.errorType().isEmpty()) {
        exchange.getResponseHeaders().set("x-amzn-ErrorType", answer.errorType());
      }
      record(target, signature, hasSessionToken, registryIds, answer.status(), answer.errorType());
      exchange.sendResponseHeaders(answer.status(), bytes.length == 0 ? -1 : bytes.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(bytes);
      }
    } catch (IOException | RuntimeException e) {
      // The client went away (cancelled, timed out); nothing to answer.
    } finally {
      inFlight.decrementAndGet();
    }
  }

  private void awaitClose() {
    try {
      closed.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void record(
      String target,
      Signature signature,
      boolean hasSessionToken,
      List<String> registryIds,
      int status,
      String errorType) {
    requests.add(
        new Request(
            target,
            signature == null ? "" : signature.accessKeyId(),
            signature == null ? "" : signature.region(),
            signature == null ? "" : signature.service(),
            signature == null ? List.of() : signature.signedHeaders(),
            hasSessionToken,
            registryIds,
            status,
            errorType));
  }

  /** What to answer; null for "never answer". */
  private Answer answer(
      HttpExchange exchange,
      Headers headers,
      byte[] body,
      String target,
      Signature signature,
      List<String> registryIds) {
    if (!exchange.getRequestMethod().equals("POST")) {
      return Answer.error(405, "UnknownOperationException", "only POST is supported");
    }
    Optional<Answer> refused = verifySignature(exchange, headers, body, signature);
    if (refused.isPresent()) {
      return refused.get();
    }
    String contentType = Optional.ofNullable(headers.getFirst("Content-Type")).orElse("");
    if (!contentType.startsWith(CONTENT_TYPE)) {
      return Answer.error(
          400, "SerializationException", "Content-Type must be " + CONTENT_TYPE);
    }
    if (!target.equals(TARGET)) {
      return Answer.error(
          400, "UnknownOperationException", "the stand-in answers only " + TARGET);
    }
    return switch (mode) {
      case OK -> tokens(registryIds);
      case ACCESS_DENIED ->
          Answer.error(
              400,
              "AccessDeniedException",
              "User: arn:aws:iam::123456789012:user/slipway-test is not authorized to perform:"
                  + " ecr:GetAuthorizationToken on resource: * because no identity-based policy"
                  + " allows the ecr:GetAuthorizationToken action");
      case SERVER_ERROR ->
          Answer.error(500, "ServerException", "the ECR stand-in is answering 500 on purpose");
      case EMPTY_AUTHORIZATION_DATA -> new Answer(200, "{\"authorizationData\":[]}", "");
      case UNDECODABLE_TOKEN ->
          new Answer(
              200,
              "{\"authorizationData\":[{\"authorizationToken\":\"%%% not base64 %%%\","
                  + "\"expiresAt\":"
                  + epochSeconds(clock.instant().plus(tokenLifetime))
                  + ",\"proxyEndpoint\":\"https://"
                  + defaultRegistryHost
                  + "\"}]}",
              "");
      case NOT_JSON -> new Answer(200, "<html>this is not ECR</html>", "");
      case HANG -> null;
    };
  }

  private Answer tokens(List<String> registryIds) {
    String token = authorizationToken();
    String expiresAt = epochSeconds(clock.instant().plus(tokenLifetime));
    List<String> hosts = new ArrayList<>();
    if (registryIds.isEmpty()) {
      hosts.add(defaultRegistryHost);
    } else {
      for (String id : registryIds) {
        hosts.add(registryHosts.getOrDefault(id, defaultRegistryHost));
      }
    }
    StringBuilder json = new StringBuilder("{\"authorizationData\":[");
    for (int i = 0; i < hosts.size(); i++) {
      if (i > 0) {
        json.append(',');
      }
      json.append("{\"authorizationToken\":\"")
          .append(token)
          .append("\",\"expiresAt\":")
          .append(expiresAt)
          .append(",\"proxyEndpoint\":\"https://")
          .append(hosts.get(i))
          .append("\"}");
    }
    json.append("]}");
    tokensIssued.incrementAndGet();
    return new Answer(200, json.toString(), "");
  }

  /** SigV4 verification; an answer when the request must be refused. */
  private Optional<Answer> verifySignature(
      HttpExchange exchange, Headers headers, byte[] body, Signature signature) {
    String amzDate = headers.getFirst("X-Amz-Date");
    if (headers.getFirst("Authorization") == null || amzDate == null) {
      return Optional.of(
          Answer.error(
              400, "MissingAuthenticationTokenException", "Missing Authentication Token"));
    }
    Matcher date = AMZ_DATE.matcher(amzDate);
    if (signature == null || !date.matches()) {
      return Optional.of(
          Answer.error(
              400,
              "IncompleteSignatureException",
              "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'"
                  + " parameters (AWS4-HMAC-SHA256) and X-Amz-Date must be yyyyMMdd'T'HHmmss'Z'"));
    }
    if (!signature.accessKeyId().equals(accessKeyId)) {
      return Optional.of(
          Answer.error(
              400,
              "UnrecognizedClientException",
              "The security token included in the request is invalid."));
    }
    if (!signature.service().equals("ecr")) {
      return Optional.of(
          Answer.error(
              400,
              "InvalidSignatureException",
              "Credential should be scoped to correct service: 'ecr'."));
    }
    if (!signature.region().equals(region)) {
      return Optional.of(
          Answer.error(
              400,
              "InvalidSignatureException",
              "Credential should be scoped to a valid region, not '" + signature.region() + "'."));
    }
    if (!signature.date().equals(date.group(1))) {
      return Optional.of(
          Answer.error(
              400,
              "InvalidSignatureException",
              "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date"
                  + " from HTTP."));
    }
    if (!signature.signedHeaders().contains("host")
        || !signature.signedHeaders().contains("x-amz-date")) {
      return Optional.of(
          Answer.error(
              400, "InvalidSignatureException", "host and x-amz-date must be signed headers."));
    }
    if (sessionToken.isPresent()) {
      String presented = headers.getFirst("X-Amz-Security-Token");
      if (presented == null
          || !signature.signedHeaders().contains("x-amz-security-token")
          || !MessageDigest.isEqual(
              presented.getBytes(StandardCharsets.UTF_8),
              sessionToken.get().getBytes(StandardCharsets.UTF_8))) {
        return Optional.of(
            Answer.error(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid."));
      }
    }
    String expected =
        SigV4.signature(
            secretAccessKey,
            exchange.getRequestMethod(),
            exchange.getRequestURI(),
            headers,
            signature.signedHeaders(),
            body,
            amzDate,
            signature.date() + "/" + signature.region() + "/" + signature.service() + "/aws4_request",
            signature.date(),
            signature.region(),
            signature.service());
    if (!MessageDigest.isEqual(
        expected.getBytes(StandardCharsets.US_ASCII),
        signature.signature().getBytes(StandardCharsets.US_ASCII))) {
      return Optional.of(
          Answer.error(
              400,
              "InvalidSignatureException",
              "The request signature we calculated does not match the signature you provided."
                  + " Check your AWS Secret Access Key and signing method. Consult the service"
                  + " documentation for details."));
    }
    return Optional.empty();
  }

  private static List<String> registryIds(String body) {
    Matcher ids = REGISTRY_IDS.matcher(body);
    if (!ids.find()) {
      return List.of();
    }
    List<String> result = new ArrayList<>();
    Matcher string = JSON_STRING.matcher(ids.group(1));
    while (string.find()) {
      result.add(string.group(1));
    }
    return result;
  }

  /** Epoch seconds with milliseconds, as a JSON number: the way ECR writes timestamps. */
  private static String epochSeconds(Instant instant) {
    long millis = instant.toEpochMilli();
    return String.format(Locale.ROOT, "%d.%03d", Math.floorDiv(millis, 1000), Math.floorMod(millis, 1000));
  }

  private static byte[] readAll(InputStream in) throws IOException {
    try (in) {
      return in.readAllBytes();
    }
  }

  private static String requireNoColon(String username) {
    if (Objects.requireNonNull(username, "username").contains(":") || username.isEmpty()) {
      throw new IllegalArgumentException("a user name must be non-empty and hold no ':'");
    }
    return username;
  }

  private static Duration requirePositive(Duration lifetime) {
    if (Objects.requireNonNull(lifetime, "lifetime").isNegative() || lifetime.isZero()) {
      throw new IllegalArgumentException("a token lifetime must be more than 0");
    }
    return lifetime;
  }

  /** An HTTP answer in ECR's shape. */
  private record Answer(int status, String body, String errorType) {
    static Answer error(int status, String type, String message) {
      return new Answer(
          status,
          "{\"__type\":\"" + type + "\",\"message\":\"" + message.replace("\"", "\\\"") + "\"}",
          type);
    }
  }

  /** The parts of an {@code Authorization: AWS4-HMAC-SHA256 ...} header. */
  private record Signature(
      String accessKeyId,
      String date,
      String region,
      String service,
      List<String> signedHeaders,
      String signature) {

    static Signature parse(String header) {
      if (header == null) {
        return null;
      }
      Matcher m = AUTHORIZATION.matcher(header.trim());
      if (!m.matches()) {
        return null;
      }
      return new Signature(
          m.group(1), m.group(2), m.group(3), m.group(4), List.of(m.group(5).split(";")), m.group(6));
    }
  }

  /** AWS Signature Version 4, the verifying side. */
  static final class SigV4 {
    private SigV4() {}

    /** The hex signature a correct signer computes for this request. */
    static String signature(
        String secretAccessKey,
        String method,
        URI requestUri,
        Headers headers,
        List<String> signedHeaders,
        byte[] body,
        String amzDate,
        String scope,
        String date,
        String region,
        String service) {
      String canonicalRequest =
          canonicalRequest(method, requestUri, headers, signedHeaders, body);
      String stringToSign =
          ALGORITHM
              + "\n"
              + amzDate
              + "\n"
              + scope
              + "\n"
              + hex(sha256(canonicalRequest.getBytes(StandardCharsets.UTF_8)));
      byte[] key = hmac(("AWS4" + secretAccessKey).getBytes(StandardCharsets.UTF_8), date);
      key = hmac(key, region);
      key = hmac(key, service);
      key = hmac(key, "aws4_request");
      return hex(hmac(key, stringToSign));
    }

    static String canonicalRequest(
        String method, URI requestUri, Headers headers, List<String> signedHeaders, byte[] body) {
      StringBuilder canonical = new StringBuilder();
      canonical.append(method).append('\n');
      String path = requestUri.getRawPath();
      canonical.append(path == null || path.isEmpty() ? "/" : path).append('\n');
      canonical.append(canonicalQuery(requestUri.getRawQuery())).append('\n');
      for (String name : signedHeaders) {
        List<String> values = headers.get(name);
        String value =
            values == null
                ? ""
                : String.join(
                    ",",
                    values.stream().map(v -> v.trim().replaceAll("\\s+", " ")).toList());
        canonical.append(name).append(':').append(value).append('\n');
      }
      canonical.append('\n');
      canonical.append(String.join(";", signedHeaders)).append('\n');
      canonical.append(hex(sha256(body)));
      return canonical.toString();
    }

    /** Parameters sorted by name, then value; already URI-encoded as the client sent them. */
    private static String canonicalQuery(String rawQuery) {
      if (rawQuery == null || rawQuery.isEmpty()) {
        return "";
      }
      Map<String, List<String>> sorted = new TreeMap<>();
      for (String pair : rawQuery.split("&")) {
        int eq = pair.indexOf('=');
        String name = eq < 0 ? pair : pair.substring(0, eq);
        String value = eq < 0 ? "" : pair.substring(eq + 1);
        sorted.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
      }
      List<String> parts = new ArrayList<>();
      sorted.forEach(
          (name, values) -> values.stream().sorted().forEach(v -> parts.add(name + "=" + v)));
      return String.join("&", parts);
    }

    private static byte[] sha256(byte[] bytes) {
      try {
        return MessageDigest.getInstance("SHA-256").digest(bytes);
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException(e);
      }
    }

    private static byte[] hmac(byte[] key, String data) {
      try {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException(e);
      }
    }

    private static String hex(byte[] bytes) {
      return HexFormat.of().formatHex(bytes);
    }
  }

  /** Describes a stand-in; {@link #start()} starts it. */
  public static final class Builder {
    private Clock clock = Clock.systemUTC();
    private String region = "eu-west-1";
    private String accessKeyId = "AKIASLIPWAYSTANDIN01";
    private String secretAccessKey = randomSecret();
    private String sessionToken;
    private String registryHost = "127.0.0.1:5000";
    private final Map<String, String> registryHosts = new LinkedHashMap<>();
    private String username = "AWS";
    private String password = randomSecret();
    private Duration tokenLifetime = Duration.ofHours(12);
    private Mode mode = Mode.OK;

    private Builder() {}

    /** The region requests must be signed for; {@code eu-west-1} by default. */
    public Builder region(String region) {
      this.region = Objects.requireNonNull(region, "region");
      return this;
    }

    /** The one access key the stand-in knows, and its secret key; random ones by default. */
    public Builder credentials(String accessKeyId, String secretAccessKey) {
      this.accessKeyId = Objects.requireNonNull(accessKeyId, "accessKeyId");
      this.secretAccessKey = Objects.requireNonNull(secretAccessKey, "secretAccessKey");
      return this;
    }

    /**
     * Requires this session token ({@code X-Amz-Security-Token}, signed) on every request, as AWS
     * does for temporary credentials; none by default.
     */
    public Builder sessionToken(String sessionToken) {
      this.sessionToken = Objects.requireNonNull(sessionToken, "sessionToken");
      return this;
    }

    /**
     * The registry host (with port, without scheme) whose proxy endpoint the tokens name;
     * {@code 127.0.0.1:5000} by default.
     */
    public Builder registryHost(String host) {
      this.registryHost = Objects.requireNonNull(host, "host");
      return this;
    }

    /** The registry host for one registry id, when a request names it. */
    public Builder registryHost(String registryId, String host) {
      registryHosts.put(
          Objects.requireNonNull(registryId, "registryId"), Objects.requireNonNull(host, "host"));
      return this;
    }

    /** The user and password inside the tokens; {@code AWS} and a random password by default. */
    public Builder tokenCredentials(String username, String password) {
      this.username = requireNoColon(username);
      this.password = Objects.requireNonNull(password, "password");
      return this;
    }

    /** The password inside the tokens; random by default. */
    public Builder password(String password) {
      this.password = Objects.requireNonNull(password, "password");
      return this;
    }

    /** How long tokens live from when they are issued; 12 hours, as ECR's, by default. */
    public Builder tokenLifetime(Duration lifetime) {
      this.tokenLifetime = requirePositive(lifetime);
      return this;
    }

    /** How the stand-in answers at first; {@link Mode#OK} by default. */
    public Builder mode(Mode mode) {
      this.mode = Objects.requireNonNull(mode, "mode");
      return this;
    }

    /** The clock that {@code expiresAt} is computed from; the system clock by default. */
    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /** Starts the stand-in on 127.0.0.1 on an ephemeral port. */
    public EcrStandIn start() {
      try {
        return new EcrStandIn(this);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot start the ECR stand-in", e);
      }
    }

    private static String randomSecret() {
      byte[] bytes = new byte[24];
      new SecureRandom().nextBytes(bytes);
      return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }
  }
}

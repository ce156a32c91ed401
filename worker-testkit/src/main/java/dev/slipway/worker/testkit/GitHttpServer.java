package dev.slipway.worker.testkit;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * A git server for tests: the real {@code git http-backend} CGI program behind the JDK's HTTP
 * server, listening on 127.0.0.1 on an ephemeral port. It speaks smart HTTP (protocol v0 and v2)
 * exactly as a production git server does, so clients are tested against real git, not a mock.
 *
 * <p>Every request must carry HTTP basic credentials matching the configured user and password,
 * else it gets {@code 401} with a {@code WWW-Authenticate} challenge; repositories named with
 * {@link Builder#anonymous} may also be read without credentials, and those named with {@link
 * Builder#forbidden} answer {@code 403} to everyone. Repositories are served from one project
 * root, e.g. as made by {@link GitRepos}; a missing one answers {@code 404}.
 *
 * <p>For tests of slow or stuck clones the server can {@linkplain #throttle throttle} its answers
 * and {@linkplain #delayPackResponses delay} the answers to pack requests. It records every
 * request (never the {@code Authorization} header's value) and counts those in flight.
 *
 * <pre>{@code
 * try (GitHttpServer server = GitHttpServer.builder(repos.root())
 *         .credentials("x-access-token", token).start()) {
 *   String url = server.url("app.git"); // http://127.0.0.1:PORT/app.git
 * }
 * }</pre>
 */
public final class GitHttpServer implements AutoCloseable {
  /** Where Debian's git package installs the CGI program. */
  public static final Path DEFAULT_BACKEND = Path.of("/usr/lib/git-core/git-http-backend");

  private static final String REALM = "slipway-test-git";

  /**
   * One request as the server saw it.
   *
   * @param method the HTTP method
   * @param uri the request URI as sent: path and query, raw
   * @param user the authenticated user, or empty when none
   * @param authorization whether the request carried an {@code Authorization} header
   * @param status the status answered, or 0 when the exchange failed before answering
   */
  public record Request(String method, String uri, String user, boolean authorization, int status) {}

  private final HttpServer server;
  private final ExecutorService executor;
  private final Path projectRoot;
  private final Path backend;
  private final Path scratch;
  private final String user;
  private final byte[] expectedCredentials;
  private final Set<String> anonymous;
  private final Set<String> forbidden;
  private final List<Request> requests = new CopyOnWriteArrayList<>();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final Set<Process> processes = ConcurrentHashMap.newKeySet();
  private final CountDownLatch closed = new CountDownLatch(1);
  private volatile long bytesPerSecond;
  private volatile Duration packDelay = Duration.ZERO;

  private GitHttpServer(Builder builder) throws IOException {
    this.projectRoot = builder.projectRoot.toAbsolutePath();
    this.backend = builder.backend;
    this.user = builder.user;
    this.expectedCredentials =
        builder.user == null
            ? null
            : (builder.user + ":" + builder.password).getBytes(StandardCharsets.UTF_8);
    this.anonymous = Set.copyOf(builder.anonymous);
    this.forbidden = Set.copyOf(builder.forbidden);
    this.scratch = Files.createTempDirectory("git-http-server-");
    // An empty HOME keeps the developer's ~/.gitconfig away from the backend.
    Files.createDirectories(scratch.resolve("home"));
    AtomicInteger threads = new AtomicInteger();
    ThreadFactory factory =
        r -> {
          Thread t = new Thread(r, "git-http-server-" + threads.incrementAndGet());
          t.setDaemon(true);
          return t;
        };
    // Unbounded, so that one stalled request never blocks the next one.
    this.executor = Executors.newCachedThreadPool(factory);
    InetAddress loopback = InetAddress.getByAddress(new byte[] {127, 0, 0, 1});
    this.server = HttpServer.create(new InetSocketAddress(loopback, 0), 50);
    server.setExecutor(executor);
    server.createContext("/", this::handle);
    server.start();
  }

  /** Starts describing a server for the bare repositories under {@code projectRoot}. */
  public static Builder builder(Path projectRoot) {
    return new Builder(projectRoot);
  }

  /** The port the server listens on, at 127.0.0.1. */
  public int port() {
    return server.getAddress().getPort();
  }

  /** The server's base URI, {@code http://127.0.0.1:PORT/}. */
  public URI uri() {
    return URI.create("http://127.0.0.1:" + port() + "/");
  }

  /** The clone URL of a repository, e.g. {@code url("app.git")}. */
  public String url(String repository) {
    return uri().resolve(repository).toString();
  }

  /**
   * Limits every answer body to about {@code bytesPerSecond}, from now on, so that a clone lasts
   * long enough to watch or cancel; 0 removes the limit.
   */
  public void throttle(long bytesPerSecond) {
    if (bytesPerSecond < 0) {
      throw new IllegalArgumentException("bytesPerSecond must be 0 or more");
    }
    this.bytesPerSecond = bytesPerSecond;
  }

  /**
   * Holds every {@code POST} (the pack negotiation and the pack itself) for {@code delay} before
   * answering, from now on; {@link Duration#ZERO} answers at once. Closing the server ends the wait.
   */
  public void delayPackResponses(Duration delay) {
    this.packDelay = Objects.requireNonNull(delay, "delay");
  }

  /** Every request so far, in the order they ended. */
  public List<Request> requests() {
    return List.copyOf(requests);
  }

  /** What the backend wrote to standard error so far: the first place to look when a clone fails. */
  public String backendErrors() {
    try {
      Path log = scratch.resolve("stderr.log");
      return Files.exists(log) ? Files.readString(log) : "";
    } catch (IOException e) {
      return "(cannot read the backend's log: " + e.getMessage() + ")";
    }
  }

  /** How many requests are being answered right now. */
  public int inFlight() {
    return inFlight.get();
  }

  /**
   * Waits until no request is being answered.
   *
   * @return whether the server became idle within {@code timeout}
   */
  public boolean awaitIdle(Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (inFlight.get() > 0) {
      if (System.nanoTime() > end) {
        return false;
      }
      Thread.sleep(10);
    }
    return true;
  }

  /** Stops the server, kills every running backend process and removes its scratch files. */
  @Override
  public void close() {
    closed.countDown();
    server.stop(0);
    processes.forEach(Process::destroyForcibly);
    executor.shutdownNow();
    try {
      executor.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    deleteRecursively(scratch);
  }

  private void handle(HttpExchange exchange) {
    inFlight.incrementAndGet();
    String method = exchange.getRequestMethod();
    String uri = exchange.getRequestURI().toString();
    String authorization = exchange.getRequestHeaders().getFirst("Authorization");
    String remoteUser = null;
    int status = 0;
    try {
      String path = exchange.getRequestURI().getPath();
      String repository = repositoryOf(path);
      if (authorization != null) {
        remoteUser = authenticate(authorization);
        if (remoteUser == null) {
          status = challenge(exchange);
          return;
        }
      } else if (!anonymous.contains(repository)) {
        status = challenge(exchange);
        return;
      }
      if (forbidden.contains(repository)) {
        status = 403;
        exchange.sendResponseHeaders(status, -1);
        return;
      }
      if ("POST".equals(method) && !packDelay.isZero() && waitClosed(packDelay)) {
        return;
      }
      status = runBackend(exchange, method, path, remoteUser);
    } catch (IOException | RuntimeException e) {
      // The client went away or the backend failed; the client sees a broken answer.
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      exchange.close();
      requests.add(
          new Request(
              method,
              uri,
              remoteUser == null ? "" : remoteUser,
              authorization != null,
              status));
      inFlight.decrementAndGet();
    }
  }

  private int challenge(HttpExchange exchange) throws IOException {
    drain(exchange);
    exchange.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"" + REALM + "\"");
    exchange.sendResponseHeaders(401, -1);
    return 401;
  }

  /** The user of valid basic credentials, else null. */
  private String authenticate(String authorization) {
    if (expectedCredentials == null
        || !authorization.regionMatches(true, 0, "Basic ", 0, "Basic ".length())) {
      return null;
    }
    byte[] given;
    try {
      given = Base64.getDecoder().decode(authorization.substring("Basic ".length()).trim());
    } catch (IllegalArgumentException e) {
      return null;
    }
    // Constant-time, as a real server would compare.
    return MessageDigest.isEqual(given, expectedCredentials) ? user : null;
  }

  /** The repository a request is for: the path up to the first segment ending in .git. */
  private static String repositoryOf(String path) {
    String trimmed = path.startsWith("/") ? path.substring(1) : path;
    String[] segments = trimmed.split("/");
    StringBuilder repository = new StringBuilder();
    for (String segment : segments) {
      if (repository.length() > 0) {
        repository.append('/');
      }
      repository.append(segment);
      if (segment.endsWith(".git")) {
        return repository.toString();
      }
    }
    return segments.length == 0 ? "" : segments[0];
  }

  private int runBackend(HttpExchange exchange, String method, String path, String remoteUser)
      throws IOException, InterruptedException {
    // Buffering the request body gives the CGI an exact CONTENT_LENGTH and cannot deadlock.
    Path body = Files.createTempFile(scratch, "request-", ".bin");
    try {
      try (InputStream in = exchange.getRequestBody()) {
        Files.copy(in, body, StandardCopyOption.REPLACE_EXISTING);
      }
      Headers headers = exchange.getRequestHeaders();
      ProcessBuilder pb =
          new ProcessBuilder(backend.toString())
              .redirectInput(body.toFile())
              .redirectError(ProcessBuilder.Redirect.appendTo(scratch.resolve("stderr.log").toFile()));
      Map<String, String> env = pb.environment();
      env.clear();
      env.put("PATH", System.getenv().getOrDefault("PATH", "/usr/bin:/bin"));
      env.put("HOME", scratch.resolve("home").toString());
      env.put("GIT_CONFIG_NOSYSTEM", "1");
      env.put("GIT_PROJECT_ROOT", projectRoot.toString());
      env.put("GIT_HTTP_EXPORT_ALL", "1");
      env.put("GATEWAY_INTERFACE", "CGI/1.1");
      env.put("SERVER_PROTOCOL", "HTTP/1.1");
      env.put("REMOTE_ADDR", "127.0.0.1");
      env.put("REQUEST_METHOD", method);
      env.put("PATH_INFO", path);
      String query = exchange.getRequestURI().getRawQuery();
      env.put("QUERY_STRING", query == null ? "" : query);
      if (!"GET".equals(method)) {
        env.put("CONTENT_LENGTH", Long.toString(Files.size(body)));
      }
      putIfPresent(env, "CONTENT_TYPE", headers.getFirst("Content-Type"));
      // JGit gzips its requests; the backend only unzips them when told.
      putIfPresent(env, "HTTP_CONTENT_ENCODING", headers.getFirst("Content-Encoding"));
      // Carries "version=2"; without it the backend falls back to protocol v0.
      putIfPresent(env, "HTTP_GIT_PROTOCOL", headers.getFirst("Git-Protocol"));
      putIfPresent(env, "REMOTE_USER", remoteUser);

      Process process = pb.start();
      processes.add(process);
      try (InputStream out = new BufferedInputStream(process.getInputStream())) {
        int status = 200;
        long length = 0;
        boolean sawHeader = false;
        for (String line = headerLine(out); !line.isEmpty(); line = headerLine(out)) {
          sawHeader = true;
          int colon = line.indexOf(':');
          if (colon <= 0) {
            continue;
          }
          String name = line.substring(0, colon).trim();
          String value = line.substring(colon + 1).trim();
          if (name.equalsIgnoreCase("Status")) {
            status = Integer.parseInt(value.split(" ", 2)[0]);
          } else if (name.equalsIgnoreCase("Content-Length")) {
            long declared = Long.parseLong(value);
            length = declared == 0 ? -1 : declared;
          } else {
            exchange.getResponseHeaders().add(name, value);
          }
        }
        if (!sawHeader) {
          exchange.sendResponseHeaders(502, -1);
          return 502;
        }
        exchange.sendResponseHeaders(status, length);
        if (length >= 0) {
          try (OutputStream response = exchange.getResponseBody()) {
            copy(out, response);
          }
        }
        return status;
      } finally {
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
          process.destroyForcibly();
        }
        processes.remove(process);
      }
    } finally {
      Files.deleteIfExists(body);
    }
  }

  private void copy(InputStream in, OutputStream out) throws IOException, InterruptedException {
    byte[] buffer = new byte[8192];
    long sent = 0;
    long start = System.nanoTime();
    while (true) {
      long rate = bytesPerSecond;
      // Small writes while throttled, so that the client sees a steady trickle.
      int chunk = rate > 0 ? (int) Math.max(256, Math.min(buffer.length, rate / 20)) : buffer.length;
      int n = in.read(buffer, 0, chunk);
      if (n < 0) {
        return;
      }
      out.write(buffer, 0, n);
      sent += n;
      if (rate > 0) {
        out.flush();
        long due = sent * 1_000_000_000L / rate - (System.nanoTime() - start);
        if (due > 0 && closed.await(due, TimeUnit.NANOSECONDS)) {
          throw new IOException("server closed");
        }
      }
    }
  }

  /** Waits for {@code delay}; true when the server closed meanwhile. */
  private boolean waitClosed(Duration delay) throws InterruptedException {
    return closed.await(delay.toNanos(), TimeUnit.NANOSECONDS);
  }

  private static String headerLine(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    for (int b = in.read(); b >= 0 && b != '\n'; b = in.read()) {
      line.write(b);
    }
    String text = line.toString(StandardCharsets.ISO_8859_1);
    return text.endsWith("\r") ? text.substring(0, text.length() - 1) : text;
  }

  private static void drain(HttpExchange exchange) throws IOException {
    try (InputStream in = exchange.getRequestBody()) {
      in.transferTo(OutputStream.nullOutputStream());
    }
  }

  private static void putIfPresent(Map<String, String> env, String name, String value) {
    if (value != null) {
      env.put(name, value);
    }
  }

  private static void deleteRecursively(Path dir) {
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException | UncheckedIOException e) {
      // Scratch files in the temp folder; nothing depends on their removal.
    }
  }

  /** Describes a {@link GitHttpServer} before it starts. */
  public static final class Builder {
    private final Path projectRoot;
    private Path backend = DEFAULT_BACKEND;
    private String user;
    private String password;
    private final Set<String> anonymous = new HashSet<>();
    private final Set<String> forbidden = new HashSet<>();

    private Builder(Path projectRoot) {
      this.projectRoot = Objects.requireNonNull(projectRoot, "projectRoot");
    }

    /** The one user and password that the server accepts as basic credentials. */
    public Builder credentials(String user, String password) {
      this.user = Objects.requireNonNull(user, "user");
      this.password = Objects.requireNonNull(password, "password");
      return this;
    }

    /** Lets anyone read {@code repository} (e.g. {@code "public.git"}) without credentials. */
    public Builder anonymous(String repository) {
      anonymous.add(repository);
      return this;
    }

    /** Answers {@code 403} to every request for {@code repository}, with or without credentials. */
    public Builder forbidden(String repository) {
      forbidden.add(repository);
      return this;
    }

    /** The {@code git-http-backend} program; {@link #DEFAULT_BACKEND} unless set. */
    public Builder backend(Path backend) {
      this.backend = Objects.requireNonNull(backend, "backend");
      return this;
    }

    /**
     * Starts the server.
     *
     * @throws IOException when it cannot listen, or the backend program is missing (install git)
     */
    public GitHttpServer start() throws IOException {
      if (!Files.isExecutable(backend)) {
        throw new IOException(
            "git http-backend not found at "
                + backend
                + "; install git (Debian: apt-get install git) or pass its path to backend()");
      }
      return new GitHttpServer(this);
    }
  }

  @Override
  public String toString() {
    return "GitHttpServer[" + uri() + ", root " + projectRoot + "]";
  }
}

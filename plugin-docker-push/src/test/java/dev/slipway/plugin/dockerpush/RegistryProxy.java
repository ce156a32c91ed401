package dev.slipway.plugin.dockerpush;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in registry on 127.0.0.1 in front of the real one: forwards every request to it, and on
 * demand answers otherwise, to make the engine and the stage meet what a real registry sometimes
 * does (5xx, a different digest, a stalled upload). The engine treats 127.0.0.0/8 as
 * insecure, so it pushes to the proxy's port over plain HTTP like to the registry itself.
 *
 * <p>Upload URLs stay on the proxy: the distribution registry builds its {@code Location}s from
 * {@code X-Forwarded-Host}, which the proxy sets (and rewrites any that still name the upstream).
 *
 * <p>The engine tries HTTPS first on an insecure registry and falls back to HTTP when the handshake
 * fails. The JDK's HTTP server would sit on a TLS ClientHello until the engine's 10 s handshake
 * timeout, so a small TCP front closes connections that start with a TLS record at once (as Go's
 * HTTP server answers them) and relays every other to the HTTP server.
 */
final class RegistryProxy implements AutoCloseable {
  private static final Set<String> HOP_BY_HOP =
      Set.of("connection", "content-length", "host", "expect", "upgrade", "transfer-encoding",
          "keep-alive", "te", "trailer", "proxy-connection", "date");

  private final String upstream;
  private final HttpServer server;
  private final ExecutorService executor = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "registry-proxy");
    t.setDaemon(true);
    return t;
  });
  private final HttpClient client =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .followRedirects(HttpClient.Redirect.NEVER)
          .proxy(HttpClient.Builder.NO_PROXY)
          .connectTimeout(Duration.ofSeconds(5))
          .build();

  private final ServerSocket front;
  private final List<String> requests = new CopyOnWriteArrayList<>();
  private final AtomicInteger manifestPuts = new AtomicInteger();
  private final AtomicInteger manifestPutFailuresLeft = new AtomicInteger();
  private volatile int manifestPutFailureStatus = 503;
  private volatile String manifestDigestOverride;
  private volatile CountDownLatch uploadGate;

  private RegistryProxy(String upstream) throws IOException {
    this.upstream = upstream;
    this.server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
    server.createContext("/", this::handle);
    server.setExecutor(executor);
    this.front = new ServerSocket(0, 64, InetAddress.getLoopbackAddress());
  }

  /** A proxy to the registry at {@code upstream} ({@code 127.0.0.1:5000}), started. */
  static RegistryProxy start(String upstream) throws IOException {
    RegistryProxy proxy = new RegistryProxy(upstream);
    proxy.server.start();
    proxy.executor.execute(proxy::accept);
    return proxy;
  }

  /** {@code 127.0.0.1:<port>}: the registry host for image references. */
  String address() {
    return "127.0.0.1:" + front.getLocalPort();
  }

  /**
   * Answers the next {@code times} manifest uploads ({@code PUT /v2/.../manifests/...}) with
   * {@code status}: the engine gives up at once ({@code received unexpected HTTP status: ...}), as
   * with a registry that fails at the end of a push.
   */
  RegistryProxy failManifestPuts(int times, int status) {
    manifestPutFailureStatus = status;
    manifestPutFailuresLeft.set(times);
    return this;
  }

  /** How many manifest uploads arrived: one per push attempt that got that far. */
  int manifestPuts() {
    return manifestPuts.get();
  }

  /** Answers {@code digest} as Docker-Content-Digest of every manifest HEAD or GET. */
  RegistryProxy overrideManifestDigest(String digest) {
    manifestDigestOverride = digest;
    return this;
  }

  /** Holds every blob upload (PATCH or PUT) until {@link #releaseUploads()}. */
  RegistryProxy stallUploads() {
    uploadGate = new CountDownLatch(1);
    return this;
  }

  void releaseUploads() {
    CountDownLatch gate = uploadGate;
    if (gate != null) {
      gate.countDown();
    }
  }

  /** Every request so far, as {@code METHOD path}. */
  List<String> requests() {
    return List.copyOf(requests);
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      String method = exchange.getRequestMethod().toUpperCase(Locale.ROOT);
      String path = exchange.getRequestURI().getRawPath();
      String query = exchange.getRequestURI().getRawQuery();
      requests.add(method + " " + path);
      byte[] body;
      try (InputStream in = exchange.getRequestBody()) {
        body = in.readAllBytes();
      }
      if (method.equals("PUT") && path.contains("/manifests/")) {
        manifestPuts.incrementAndGet();
        if (manifestPutFailuresLeft.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
          respond(exchange, manifestPutFailureStatus, "");
          return;
        }
      }
      CountDownLatch gate = uploadGate;
      if (gate != null && path.contains("/blobs/uploads/") && (method.equals("PATCH") || method.equals("PUT"))) {
        try {
          gate.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        }
      }
      forward(exchange, method, path, query, body);
    } catch (IOException | RuntimeException e) {
      // The client went away (a cancelled push): nothing to answer.
    }
  }

  private void forward(HttpExchange exchange, String method, String path, String query, byte[] body)
      throws IOException {
    URI uri = URI.create("http://" + upstream + path + (query == null ? "" : "?" + query));
    HttpRequest.Builder request =
        HttpRequest.newBuilder(uri)
            .timeout(Duration.ofSeconds(60))
            .method(method, body.length == 0 && (method.equals("GET") || method.equals("HEAD") || method.equals("DELETE"))
                ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofByteArray(body));
    exchange.getRequestHeaders().forEach((name, values) -> {
      if (!HOP_BY_HOP.contains(name.toLowerCase(Locale.ROOT))) {
        values.forEach(v -> request.header(name, v));
      }
    });
    request.header("X-Forwarded-Host", address());
    request.header("X-Forwarded-Proto", "http");
    HttpResponse<byte[]> response;
    try {
      response = client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
    response.headers().map().forEach((name, values) -> {
      String lower = name.toLowerCase(Locale.ROOT);
      if (lower.equals("location")) {
        values.forEach(v -> exchange.getResponseHeaders().add(name, v.replace(upstream, address())));
      } else if (!HOP_BY_HOP.contains(lower) || (lower.equals("content-length") && method.equals("HEAD"))) {
        values.forEach(v -> exchange.getResponseHeaders().add(name, v));
      }
    });
    String override = manifestDigestOverride;
    if (override != null && path.contains("/manifests/") && (method.equals("HEAD") || method.equals("GET"))
        && response.statusCode() == 200) {
      exchange.getResponseHeaders().set("Docker-Content-Digest", override);
    }
    byte[] out = response.body() == null ? new byte[0] : response.body();
    if (method.equals("HEAD") || out.length == 0) {
      exchange.sendResponseHeaders(response.statusCode(), -1);
    } else {
      exchange.sendResponseHeaders(response.statusCode(), out.length);
      exchange.getResponseBody().write(out);
    }
  }

  private static void respond(HttpExchange exchange, int status, String json) throws IOException {
    byte[] bytes = json.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Docker-Distribution-Api-Version", "registry/2.0");
    if (bytes.length == 0) {
      exchange.sendResponseHeaders(status, -1);
      return;
    }
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(status, bytes.length);
    exchange.getResponseBody().write(bytes);
  }

  /** The TCP front: drops TLS at once, relays plain HTTP to the HTTP server. */
  private void accept() {
    while (!front.isClosed()) {
      Socket client;
      try {
        client = front.accept();
      } catch (IOException e) {
        return;
      }
      executor.execute(() -> relay(client));
    }
  }

  private void relay(Socket client) {
    try (client) {
      InputStream in = client.getInputStream();
      int first = in.read();
      if (first < 0 || first == 0x16) {
        return; // a TLS handshake record: not spoken here
      }
      try (Socket backend = new Socket(InetAddress.getLoopbackAddress(), server.getAddress().getPort())) {
        OutputStream toBackend = backend.getOutputStream();
        toBackend.write(first);
        toBackend.flush();
        // The engine never half-closes: when either side ends, the connection is over.
        executor.execute(() -> pump(backendStream(backend), outputOf(client), client, backend));
        pump(in, toBackend, client, backend);
      }
    } catch (IOException e) {
      // A connection ends: nothing to do.
    }
  }

  private static InputStream backendStream(Socket s) {
    try {
      return s.getInputStream();
    } catch (IOException e) {
      return InputStream.nullInputStream();
    }
  }

  private static OutputStream outputOf(Socket s) {
    try {
      return s.getOutputStream();
    } catch (IOException e) {
      return OutputStream.nullOutputStream();
    }
  }

  /** Copies until end of stream or error, then closes both sockets' directions it served. */
  private static void pump(InputStream from, OutputStream to, Socket a, Socket b) {
    byte[] buffer = new byte[64 * 1024];
    try {
      int n;
      while ((n = from.read(buffer)) >= 0) {
        to.write(buffer, 0, n);
        to.flush();
      }
    } catch (IOException e) {
      // One side went away.
    } finally {
      closeQuietly(a);
      closeQuietly(b);
    }
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException e) {
      // closing
    }
  }

  @Override
  public void close() {
    releaseUploads();
    try {
      front.close();
    } catch (IOException e) {
      // closing
    }
    server.stop(0);
    executor.shutdownNow();
  }
}

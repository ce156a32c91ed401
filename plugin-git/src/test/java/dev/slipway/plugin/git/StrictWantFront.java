package dev.slipway.plugin.git;

import dev.slipway.worker.testkit.GitRepos;
import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.zip.GZIPInputStream;

/**
 * A git server that sends only what it advertises, in front of {@code GitHttpServer}: it refuses
 * every {@code want} of an object that is not the tip of one of the repository's refs, as a server
 * without {@code uploadpack.allowReachableSHA1InWant} / {@code allowAnySHA1InWant} does over a
 * bidirectional connection (ssh, git://), and as some hosted servers do over HTTP too.
 *
 * <p>Needed because {@code git http-backend} cannot be made that strict: over HTTP (stateless RPC)
 * protocol v0 always grants wants reachable from a ref (the refs may have moved between the
 * requests), and protocol v2, which JGit speaks by default, grants a want of any object the
 * repository has ("wants can be anything", gitprotocol-v2). {@code uploadpack.allowAnySHA1InWant}
 * in the served repository only changes what v0 does with unreachable objects.
 *
 * <p>Plain sockets, one request per connection, like the front of {@code GitRedirectTest}: this
 * module does not read jdk.httpserver.
 */
final class StrictWantFront implements AutoCloseable {
  private final ServerSocket socket;
  private final int backendPort;
  private final Path projectRoot;
  /** The wants this front refused, as 40 hex digits. */
  final List<String> refused = new CopyOnWriteArrayList<>();
  /** The wants this front passed on. */
  final List<String> granted = new CopyOnWriteArrayList<>();

  StrictWantFront(int backendPort, Path projectRoot) throws IOException {
    this.backendPort = backendPort;
    this.projectRoot = projectRoot;
    socket = new ServerSocket(0, 50, InetAddress.getByAddress(new byte[] {127, 0, 0, 1}));
    Thread acceptor = new Thread(this::accept, "strict-want-front");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  String url(String repository) {
    return "http://127.0.0.1:" + socket.getLocalPort() + "/" + repository;
  }

  private void accept() {
    while (!socket.isClosed()) {
      try {
        Socket client = socket.accept();
        Thread t = new Thread(() -> serve(client), "strict-want-front-client");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        // Closed.
      }
    }
  }

  private void serve(Socket client) {
    try (client;
        InputStream in = new BufferedInputStream(client.getInputStream());
        OutputStream out = client.getOutputStream()) {
      String[] requestLine = line(in).split(" ");
      String method = requestLine[0];
      String uri = requestLine[1];
      Map<String, String> headers = new HashMap<>();
      for (String header = line(in); !header.isEmpty(); header = line(in)) {
        int colon = header.indexOf(':');
        headers.put(
            header.substring(0, colon).trim().toLowerCase(Locale.ROOT),
            header.substring(colon + 1).trim());
      }
      byte[] body = body(in, headers);
      String path = URI.create(uri).getRawPath();
      if (method.equals("POST") && path.endsWith("/git-upload-pack")) {
        String repository = path.substring(1, path.length() - "/git-upload-pack".length());
        Set<String> tips = tips(projectRoot.resolve(repository));
        for (String want : wants(body, headers.get("content-encoding"))) {
          if (!tips.contains(want)) {
            refused.add(want);
            // What git upload-pack answers to a want it will not grant.
            answer(
                out,
                200,
                Map.of("Content-Type", "application/x-git-upload-pack-result"),
                pkt("ERR upload-pack: not our ref " + want + "\n"));
            return;
          }
          granted.add(want);
        }
      }
      proxy(out, method, uri, headers, body);
    } catch (IOException | RuntimeException e) {
      // A client that went away; it sees a broken answer.
    }
  }

  /** The ids the repository advertises: every ref's, and the commits annotated tags point to. */
  private static Set<String> tips(Path repository) throws IOException {
    Set<String> tips = new HashSet<>();
    String refs =
        GitRepos.git(repository, "for-each-ref", "--format=%(objectname) %(*objectname)");
    for (String id : refs.split("\\s+")) {
      if (!id.isEmpty()) {
        tips.add(id);
      }
    }
    return tips;
  }

  /** The {@code want} lines of an upload-pack request, protocol v0 or v2. */
  private static List<String> wants(byte[] body, String encoding) throws IOException {
    InputStream in = new ByteArrayInputStream(body);
    if ("gzip".equalsIgnoreCase(encoding)) {
      in = new GZIPInputStream(in);
    }
    byte[] data = in.readAllBytes();
    Map<String, Boolean> wants = new LinkedHashMap<>();
    int at = 0;
    while (at + 4 <= data.length) {
      int length = Integer.parseInt(new String(data, at, 4, StandardCharsets.US_ASCII), 16);
      if (length < 4) { // flush, delimiter, response end
        at += 4;
        continue;
      }
      String text = new String(data, at + 4, length - 4, StandardCharsets.UTF_8);
      if (text.startsWith("want ") && text.length() >= 45) {
        wants.put(text.substring(5, 45), true);
      }
      at += length;
    }
    return List.copyOf(wants.keySet());
  }

  private static byte[] pkt(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    String length = String.format("%04x", bytes.length + 4);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(length.getBytes(StandardCharsets.US_ASCII));
    out.writeBytes(bytes);
    return out.toByteArray();
  }

  private void proxy(
      OutputStream out, String method, String uri, Map<String, String> headers, byte[] body)
      throws IOException {
    HttpURLConnection connection =
        (HttpURLConnection) new URL("http://127.0.0.1:" + backendPort + uri).openConnection();
    connection.setInstanceFollowRedirects(false);
    connection.setRequestMethod(method);
    for (String header :
        List.of("authorization", "content-type", "content-encoding", "accept", "git-protocol")) {
      if (headers.containsKey(header)) {
        connection.setRequestProperty(header, headers.get(header));
      }
    }
    if (method.equals("POST")) {
      connection.setDoOutput(true);
      connection.setFixedLengthStreamingMode(body.length);
      try (OutputStream request = connection.getOutputStream()) {
        request.write(body);
      }
    }
    int status = connection.getResponseCode();
    Map<String, String> answerHeaders = new HashMap<>();
    for (String header : List.of("Content-Type", "WWW-Authenticate", "Cache-Control")) {
      String value = connection.getHeaderField(header);
      if (value != null) {
        answerHeaders.put(header, value);
      }
    }
    InputStream answer = status >= 400 ? connection.getErrorStream() : connection.getInputStream();
    byte[] bytes = answer == null ? new byte[0] : answer.readAllBytes();
    answer(out, status, answerHeaders, bytes);
  }

  private static void answer(
      OutputStream out, int status, Map<String, String> headers, byte[] body) throws IOException {
    StringBuilder head = new StringBuilder("HTTP/1.1 " + status + " X\r\n");
    headers.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
    head.append("Content-Length: ").append(body.length).append("\r\nConnection: close\r\n\r\n");
    out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
    out.write(body);
    out.flush();
  }

  /** The request body, by Content-Length or chunked. */
  private static byte[] body(InputStream in, Map<String, String> headers) throws IOException {
    if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      for (int size = Integer.parseInt(line(in).split(";")[0].trim(), 16);
          size > 0;
          size = Integer.parseInt(line(in).split(";")[0].trim(), 16)) {
        body.write(in.readNBytes(size));
        line(in);
      }
      while (!line(in).isEmpty()) {
        // Trailers.
      }
      return body.toByteArray();
    }
    String length = headers.get("content-length");
    return length == null ? new byte[0] : in.readNBytes(Integer.parseInt(length));
  }

  private static String line(InputStream in) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    for (int b = in.read(); b >= 0 && b != '\n'; b = in.read()) {
      line.write(b);
    }
    String text = line.toString(StandardCharsets.ISO_8859_1);
    return text.endsWith("\r") ? text.substring(0, text.length() - 1) : text;
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}

package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A redirect on the same host that changes the repository path leaves the scope the caller's
 * allow-list was checked for ({@code acme/*} checked, {@code evil/x} cloned), so it is refused;
 * one that keeps the path is followed.
 */
class GitRedirectTest {
  private static final String TOKEN = "redirect-test-token";

  @TempDir static Path repoRoot;
  private static GitHttpServer backend;
  private static Front front;

  @TempDir Path workspace;

  @BeforeAll
  static void startServers() throws Exception {
    GitRepos repos = new GitRepos(repoRoot);
    repos.repository("acme/app.git").file("Dockerfile", "FROM scratch\n").commit("app").build();
    repos.repository("evil/x.git").file("evil.txt", "not what was checked\n").commit("x").build();
    backend = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
    front = new Front(backend.port());
  }

  @AfterAll
  static void stopServers() throws IOException {
    front.close();
    backend.close();
  }

  @Test
  void redirectToAnotherRepositoryOnTheSameHostIsRefused() throws Exception {
    front.redirect("/acme/moved.git/", "/evil/x.git/");
    RecordingJobContext ctx = context(workspace, front.url("acme/moved.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.invalid-request", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(
        e.getMessage().contains("redirected the clone from /acme/moved.git to /evil/x.git, another"
            + " repository path on the same host"),
        e.getMessage());
    assertTrue(e.getMessage().contains("use the repository's final URL"), e.getMessage());
    assertTrue(front.redirected.stream().anyMatch(p -> p.startsWith("/acme/moved.git/info/refs")),
        front.redirected::toString);
    assertTrue(front.proxied.stream().noneMatch(p -> p.contains("evil")), front.proxied::toString);
    assertTrue(backend.requests().stream().noneMatch(r -> r.uri().contains("evil")),
        backend.requests()::toString);
    assertFalse(Files.exists(workspace.resolve("src/evil.txt")));
  }

  /** Servers that resolve dot segments would read this as /evil/x.git: refused as well. */
  @Test
  void redirectToAPathWithDotSegmentsIsRefused() throws Exception {
    front.redirect("/acme/dots.git/", "/acme/../evil/x.git/");
    RecordingJobContext ctx = context(workspace, front.url("acme/dots.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

    assertEquals("git.invalid-request", e.code());
    assertTrue(
        e.getMessage().contains("redirected the clone of /acme/dots.git to a path that has a '..'"
            + " segment in its path"),
        e.getMessage());
    assertTrue(front.proxied.stream().noneMatch(p -> p.contains("evil")), front.proxied::toString);
  }

  /** A redirect that keeps the repository's path, here to the same URL once, is followed. */
  @Test
  void redirectThatKeepsTheRepositoryPathIsFollowed() throws Exception {
    front.redirectOnce("/acme/app.git/info/refs");
    RecordingJobContext ctx = context(workspace, front.url("acme/app.git"), "", TOKEN);

    run(stage(), ctx);

    assertTrue(front.redirected.contains("/acme/app.git/info/refs?service=git-upload-pack"),
        front.redirected::toString);
    assertTrue(Files.exists(workspace.resolve("src/Dockerfile")));
  }

  /**
   * A small HTTP/1.1 server on 127.0.0.1 in front of the git server (plain sockets: this module
   * does not read jdk.httpserver): it answers 301 for the paths it is told to move, and hands
   * every other request on to the git server as it came, one request per connection.
   */
  private static final class Front implements AutoCloseable {
    private final ServerSocket socket;
    private final int backendPort;
    private final List<String[]> moves = new CopyOnWriteArrayList<>();
    private final Set<String> once = ConcurrentHashMap.newKeySet();
    final List<String> redirected = new CopyOnWriteArrayList<>();
    final List<String> proxied = new CopyOnWriteArrayList<>();

    Front(int backendPort) throws Exception {
      this.backendPort = backendPort;
      socket = new ServerSocket(0, 50, GitStageTest.loopback());
      Thread acceptor = new Thread(this::accept, "redirect-front");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    String url(String repository) {
      return "http://127.0.0.1:" + socket.getLocalPort() + "/" + repository;
    }

    /** Every request whose path starts with {@code from} goes to {@code to} instead. */
    void redirect(String from, String to) {
      moves.add(new String[] {from, to});
    }

    /** The first request for {@code path} is redirected to the very same URL. */
    void redirectOnce(String path) {
      once.add(path);
    }

    private void accept() {
      while (!socket.isClosed()) {
        try {
          Socket client = socket.accept();
          Thread t = new Thread(() -> serve(client), "redirect-front-client");
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
          headers.put(header.substring(0, colon).trim().toLowerCase(Locale.ROOT), header.substring(colon + 1).trim());
        }
        byte[] body = body(in, headers);
        String path = URI.create(uri).getRawPath();
        String location = null;
        for (String[] move : moves) {
          if (path.startsWith(move[0])) {
            location = move[1] + uri.substring(move[0].length());
          }
        }
        if (location == null && once.remove(path)) {
          location = uri;
        }
        if (location != null) {
          redirected.add(uri);
          answer(out, 301, Map.of("Location", location), new byte[0]);
        } else {
          proxied.add(uri);
          proxy(out, method, uri, headers, body);
        }
      } catch (IOException | RuntimeException e) {
        // A client that went away; it sees a broken answer.
      }
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

    private static void answer(OutputStream out, int status, Map<String, String> headers, byte[] body)
        throws IOException {
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
}

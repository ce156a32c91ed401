package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The token goes to the repository's server as basic credentials and nowhere else: not into the
 * workspace, the log, published values, URLs, error messages, or another host.
 */
class GitTokenSecrecyTest {
  private static final String TOKEN = "ghs_" + UUID.randomUUID().toString().replace("-", "");

  @TempDir static Path repoRoot;
  private static GitRepos repos;
  private static GitHttpServer server;

  @TempDir Path workspace;

  @BeforeAll
  static void startServer() throws Exception {
    repos = new GitRepos(repoRoot);
    repos.repository("lib.git").file("lib.txt", "library\n").commit("lib").build();
    String lib = repos.revParse("lib.git", "HEAD");
    repos
        .repository("app.git")
        .file("Dockerfile", "FROM scratch\n")
        .commit("initial")
        .commits(20)
        .submodule("lib", "../lib.git", lib)
        .commit("add lib")
        .build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
  }

  @AfterAll
  static void stopServer() {
    server.close();
  }

  /** The token as it might appear: raw, URL-encoded, and inside a basic Authorization value. */
  private static List<byte[]> forms() {
    return Stream.of(
            TOKEN,
            URLEncoder.encode(TOKEN, StandardCharsets.UTF_8),
            Base64.getEncoder().encodeToString(("x-access-token:" + TOKEN).getBytes(StandardCharsets.UTF_8)),
            Base64.getEncoder().encodeToString(TOKEN.getBytes(StandardCharsets.UTF_8)))
        .map(s -> s.getBytes(StandardCharsets.UTF_8))
        .toList();
  }

  @Test
  void tokenIsNowhereAfterAClone() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("app.git"), "", TOKEN);
    int before = server.requests().size();

    run(stage("depth = 0, submodules = true"), ctx);

    // The clone worked, with the token, submodule included.
    assertTrue(Files.exists(workspace.resolve("src/lib/lib.txt")));
    List<GitHttpServer.Request> requests = server.requests().subList(before, server.requests().size());
    assertTrue(requests.stream().anyMatch(r -> r.user().equals("x-access-token")), requests::toString);

    List<Path> files;
    try (Stream<Path> walk = Files.walk(workspace)) {
      files = walk.toList();
    }
    assertTrue(files.stream().anyMatch(p -> p.endsWith(Path.of(".git", "config"))), "walked .git too");
    assertTrue(files.size() > 30, "walked only " + files.size() + " paths");
    List<String> leaks = new ArrayList<>();
    for (Path path : files) {
      if (path.toString().contains(TOKEN)) {
        leaks.add("file name " + path);
      }
      if (Files.isRegularFile(path) && containsAny(Files.readAllBytes(path))) {
        leaks.add("content of " + workspace.relativize(path));
      }
    }
    assertEquals(List.of(), leaks);
    for (String line : ctx.lines()) {
      assertFalse(containsAny(line.getBytes(StandardCharsets.UTF_8)), "log line leaks: " + line);
    }
    assertFalse(ctx.get(StageKeys.SOURCE_DIR).orElseThrow().toString().contains(TOKEN));
    assertFalse(ctx.get(StageKeys.COMMIT_SHA).orElseThrow().contains(TOKEN));
    for (GitHttpServer.Request request : requests) {
      assertFalse(request.uri().contains(TOKEN), "URL leaks: " + request.uri());
    }
  }

  @Test
  void tokenIsInNoErrorMessage() throws Exception {
    List<String> messages = new CopyOnWriteArrayList<>();
    for (String[] request :
        new String[][] {
          {server.url("app.git"), "no-such-branch"},
          {server.url("missing.git"), ""},
          {"http://127.0.0.1:1/app.git", ""}
        }) {
      RecordingJobContext ctx = context(workspace, request[0], request[1], TOKEN);
      StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));
      for (Throwable t = e; t != null; t = t.getCause()) {
        messages.add(String.valueOf(t.getMessage()));
      }
      messages.addAll(ctx.lines());
    }
    for (String message : messages) {
      assertFalse(containsAny(message.getBytes(StandardCharsets.UTF_8)), "leaks: " + message);
    }
  }

  /**
   * A server that asks for credentials, then redirects to another host (here, another port), must
   * not get the token to that host: JGit would send its basic credentials after the redirect.
   */
  @Test
  void redirectToAnotherHostIsRefusedAndGetsNoToken() throws Exception {
    try (Redirector redirector = new Redirector(server.url("app.git/info/refs?service=git-upload-pack"))) {
      int before = server.requests().size();
      RecordingJobContext ctx =
          context(workspace, "http://127.0.0.1:" + redirector.port() + "/app.git", "", TOKEN);

      StageException e = assertThrows(StageException.class, () -> run(stage(), ctx));

      assertEquals("git.clone-failed", e.code());
      assertTrue(e.getMessage().contains("redirects are refused"), e.getMessage());
      assertEquals(before, server.requests().size(), "the other host was contacted");
      assertTrue(redirector.sawCredentials(), "the redirect came after authentication");
    }
  }

  private static boolean containsAny(byte[] haystack) {
    for (byte[] needle : forms()) {
      outer:
      for (int i = 0; i + needle.length <= haystack.length; i++) {
        for (int j = 0; j < needle.length; j++) {
          if (haystack[i + j] != needle[j]) {
            continue outer;
          }
        }
        return true;
      }
    }
    return false;
  }

  /** Asks for basic credentials, then answers every authenticated request with a redirect. */
  private static final class Redirector implements AutoCloseable {
    private final ServerSocket socket;
    private final Thread thread;
    private volatile boolean sawCredentials;

    Redirector(String location) throws Exception {
      socket = new ServerSocket(0, 10, GitStageTest.loopback());
      thread = new Thread(() -> serve(location), "redirector");
      thread.setDaemon(true);
      thread.start();
    }

    int port() {
      return socket.getLocalPort();
    }

    boolean sawCredentials() {
      return sawCredentials;
    }

    private void serve(String location) {
      while (!socket.isClosed()) {
        try (Socket client = socket.accept()) {
          BufferedReader in =
              new BufferedReader(new InputStreamReader(client.getInputStream(), StandardCharsets.ISO_8859_1));
          boolean authorized = false;
          for (String line = in.readLine(); line != null && !line.isEmpty(); line = in.readLine()) {
            authorized |= line.toLowerCase().startsWith("authorization:");
          }
          sawCredentials |= authorized;
          String answer =
              authorized
                  ? "HTTP/1.1 302 Found\r\nLocation: " + location + "\r\n"
                  : "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n";
          OutputStream out = client.getOutputStream();
          out.write((answer + "Content-Length: 0\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
          out.flush();
        } catch (Exception e) {
          // Closed, or a client that went away.
        }
      }
    }

    @Override
    public void close() throws java.io.IOException {
      socket.close();
    }
  }
}

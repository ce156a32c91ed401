package dev.slipway.plugin.git.jgit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.plugin.git.CloneFailure;
import dev.slipway.plugin.git.CloneFailure.Reason;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.URL;
import java.net.UnknownHostException;
import java.util.List;
import org.eclipse.jgit.api.errors.TransportException;
import org.eclipse.jgit.errors.NoRemoteRepositoryException;
import org.eclipse.jgit.transport.CredentialItem;
import org.eclipse.jgit.transport.URIish;
import org.eclipse.jgit.transport.http.HttpConnectionFactory2;
import org.junit.jupiter.api.Test;

/** The parts of the JGit adapter that need no server: failure mapping and the guards. */
class JGitClientTest {

  /**
   * A commit the server will not send by id is searched for at the configured depth, then ten
   * times deeper each time, then in the whole history: a bounded number of fetches.
   */
  @Test
  void searchDepthsDeepenFromTheConfiguredDepthToTheWholeHistory() {
    assertEquals(List.of(1, 10, 100, 1000, 0), JGitClient.searchDepths(1));
    assertEquals(List.of(50, 100, 1000, 0), JGitClient.searchDepths(50));
    assertEquals(List.of(5000, 0), JGitClient.searchDepths(5000));
    assertEquals(List.of(0), JGitClient.searchDepths(0));
  }

  @Test
  void mapsJGitFailuresToReasons() throws Exception {
    URIish uri = new URIish("https://github.com/o/r.git");
    assertReason(Reason.REPOSITORY_NOT_FOUND, wrap(new NoRemoteRepositoryException(uri, "not found")));
    // No network in tests for these: an unknown host would mean a DNS query.
    assertReason(Reason.UNREACHABLE, wrap(new org.eclipse.jgit.errors.TransportException(uri, "cannot open git-upload-pack", new UnknownHostException("github.invalid"))));
    assertReason(Reason.UNREACHABLE, wrap(new org.eclipse.jgit.errors.TransportException(uri, "connection failed", new ConnectException("Connection refused"))));
    assertReason(Reason.UNREACHABLE, wrap(new IOException("read", new SocketTimeoutException("Read timed out"))));
    assertReason(Reason.CREDENTIALS_MISSING, wrap(new org.eclipse.jgit.errors.TransportException(uri, "Authentication is required but no CredentialsProvider has been registered")));
    assertReason(Reason.CREDENTIALS_REFUSED, wrap(new org.eclipse.jgit.errors.TransportException(uri, "not authorized")));
    assertReason(Reason.FORBIDDEN, wrap(new org.eclipse.jgit.errors.TransportException(uri, "git-upload-pack not permitted on 'https://github.com/o/r.git/'")));
    CloneFailure other = JGitClient.classify(wrap(new IOException("disk full")));
    assertEquals(Reason.FAILED, other.reason());
    assertTrue(other.getMessage().contains("disk full"), other.getMessage());
  }

  @Test
  void connectionsGoOnlyToAllowedOrigins() throws Exception {
    GuardedConnectionFactory factory =
        new GuardedConnectionFactory(URI.create("https://github.com/o/r.git"), 1_000);

    assertTrue(factory.allows(new URIish("https://github.com/other/repo.git")));
    assertTrue(factory.allows(new URIish("https://GitHub.com:443/o/r.git")));
    assertFalse(factory.allows(new URIish("http://github.com/o/r.git")));
    assertFalse(factory.allows(new URIish("https://github.com:8443/o/r.git")));
    assertFalse(factory.allows(new URIish("https://evil.example/o/r.git")));
    // Refused before any connection is opened, so no network here.
    assertThrows(
        GuardedConnectionFactory.OriginRefusedException.class,
        () -> factory.create(new URL("https://evil.example/o/r.git/info/refs")));

    factory.allow(URI.create("https://evil.example/lib.git"));
    assertTrue(factory.allows(new URIish("https://evil.example/o/r.git")));

    // Transports only for the repositories that were checked, not their hosts' others.
    assertTrue(factory.allowsRepository(new URIish("https://github.com/o/r.git")));
    assertTrue(factory.allowsRepository(new URIish("https://GitHub.com:443/o/r.git/")));
    assertTrue(factory.allowsRepository(new URIish("https://evil.example/lib.git")));
    assertFalse(factory.allowsRepository(new URIish("https://github.com/other/repo.git")));
    assertFalse(factory.allowsRepository(new URIish("https://evil.example/o/r.git")));
  }

  /**
   * Each transport's requests stay on its repository's path: a same-host redirect to another
   * repository (or to a path servers would read as another) is refused before any connection.
   */
  @Test
  void connectionsOfARepositoryStayOnItsPath() throws Exception {
    GuardedConnectionFactory factory =
        new GuardedConnectionFactory(URI.create("https://github.com/acme/app.git"), 1_000);
    HttpConnectionFactory2 app = factory.forRepository(new URIish("https://github.com/acme/app.git"));
    String base = "https://github.com/acme/app.git/";
    String sha = "0123456789abcdef0123456789abcdef01234567";

    // Opening a JDK connection does not connect, so no network here.
    for (String allowed :
        List.of(
            "info/refs?service=git-upload-pack",
            "git-upload-pack",
            "HEAD",
            "info/refs",
            "objects/info/packs",
            "objects/01/" + sha.substring(2),
            "objects/pack/pack-" + sha + ".idx")) {
      app.create(new URL(base + allowed));
    }
    factory.forRepository(new URIish("https://github.com/acme/app.git/"))
        .create(new URL(base + "info/refs?service=git-upload-pack"));
    factory.forRepository(new URIish("https://github.com/acme/%61pp.git"))
        .create(new URL(base + "git-upload-pack"));

    for (String refused :
        List.of(
            "https://github.com/evil/x.git/info/refs?service=git-upload-pack",
            "https://github.com/acme/app.git/foo/info/refs?service=git-upload-pack",
            "https://github.com/acme/app.gitx/info/refs",
            "https://github.com/acme/app/info/refs",
            "https://github.com/acme/app.git/objects/info/alternates/x",
            "https://github.com/acme/app.git/config",
            "https://github.com/acme//app.git/info/refs",
            "https://github.com/acme/app.git/../../evil/x.git/info/refs",
            "https://github.com/acme/..%2fevil%2fx.git/info/refs",
            "https://github.com/acme/%2e%2e/evil/x.git/info/refs")) {
      assertThrows(
          GuardedConnectionFactory.PathRefusedException.class,
          () -> app.create(new URL(refused)),
          refused);
    }
    // The origin check still holds, on the repository's own path too.
    assertThrows(
        GuardedConnectionFactory.OriginRefusedException.class,
        () -> app.create(new URL("https://evil.example/acme/app.git/info/refs")));
    // And the reason the stage maps to git.invalid-request.
    IOException refused =
        assertThrows(
            IOException.class,
            () -> app.create(new URL("https://github.com/evil/x.git/info/refs?service=git-upload-pack")));
    CloneFailure failure = JGitClient.classify(wrap(refused));
    assertEquals(Reason.REDIRECTED_ELSEWHERE, failure.reason());
    assertEquals(
        "the server redirected the clone from /acme/app.git to /evil/x.git, another repository path"
            + " on the same host; a redirect that changes the repository is refused, since the"
            + " repository cloned would not be the one checked against the caller's allowed"
            + " repositories: use the repository's final URL",
        failure.getMessage());
  }

  @Test
  void abortedFactoryOpensNothing() throws Exception {
    GuardedConnectionFactory factory =
        new GuardedConnectionFactory(URI.create("http://127.0.0.1:1/r.git"), 1_000);
    factory.abort();

    assertThrows(
        InterruptedIOException.class,
        () -> factory.create(new URL("http://127.0.0.1:1/r.git/info/refs")));
  }

  @Test
  void tokenGoesOnlyToTheRepositorysOrigin() throws Exception {
    TokenCredentialsProvider provider =
        new TokenCredentialsProvider(new URIish("https://github.com/o/r.git"), "the-token");
    CredentialItem.Username user = new CredentialItem.Username();
    CredentialItem.Password password = new CredentialItem.Password();

    assertFalse(provider.isInteractive());
    assertTrue(provider.supports(user, password));
    assertFalse(provider.get(new URIish("https://gitlab.com/o/r.git"), user, password));
    assertFalse(provider.get(new URIish("http://github.com/o/r.git"), user, password));
    assertEquals(null, user.getValue());

    assertTrue(provider.get(new URIish("https://github.com:443/o/lib.git"), user, password));
    assertEquals("x-access-token", user.getValue());
    assertEquals("the-token", new String(password.getValue()));
  }

  private static TransportException wrap(Exception cause) {
    return new TransportException(cause.getMessage(), cause);
  }

  private static void assertReason(Reason expected, Throwable e) {
    assertEquals(expected, JGitClient.classify(e).reason(), e::toString);
  }
}

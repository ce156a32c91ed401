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
import org.eclipse.jgit.api.errors.TransportException;
import org.eclipse.jgit.errors.NoRemoteRepositoryException;
import org.eclipse.jgit.transport.CredentialItem;
import org.eclipse.jgit.transport.URIish;
import org.junit.jupiter.api.Test;

/** The parts of the JGit adapter that need no server: failure mapping and the guards. */
class JGitClientTest {

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

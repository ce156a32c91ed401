package dev.slipway.plugin.git.jgit;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URI;
import java.net.URL;
import java.net.URLConnection;
import java.net.URLStreamHandler;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.jgit.transport.URIish;
import org.eclipse.jgit.transport.http.HttpConnection;
import org.eclipse.jgit.transport.http.HttpConnectionFactory2;
import org.eclipse.jgit.transport.http.JDKHttpConnection;
import org.eclipse.jgit.transport.http.JDKHttpConnectionFactory;

/**
 * JGit's own JDK connection factory for one clone, with three additions.
 *
 * <ul>
 *   <li>It connects only to the origins (scheme, host, port) the clone was allowed: JGit follows
 *       redirects and keeps sending basic credentials after one, so a redirect elsewhere would
 *       hand the token to another host. Such a connection fails with {@link OriginRefusedException}.
 *   <li>It remembers every connection it opened and {@link #abort() aborts} them on cancellation.
 *       A thread blocked reading a socket ignores interruption, and JGit only polls its progress
 *       monitor between objects; closing the socket is what stops a stalled clone at once.
 *   <li>It sets the connect and read timeout of every connection itself. JGit's own timeout
 *       (TransportCommand.setTimeout) wraps each stream in a TimeoutInputStream whose timer
 *       thread clears the reading thread's interrupt flag, which would swallow the runtime's
 *       interrupt; with that timeout off, JGit would set the connections' timeouts to infinite.
 * </ul>
 *
 * <p>To reach the JDK connection that JGit's {@code JDKHttpConnection} wraps, the URL handed to
 * it carries a stream handler that opens the connection itself and records it.
 */
final class GuardedConnectionFactory implements HttpConnectionFactory2 {
  private final JDKHttpConnectionFactory delegate = new JDKHttpConnectionFactory();
  private final int timeoutMillis;
  private final Set<String> origins = ConcurrentHashMap.newKeySet();
  private final List<HttpURLConnection> opened = new ArrayList<>();
  private boolean aborted;

  private final URLStreamHandler recorder =
      new URLStreamHandler() {
        @Override
        protected URLConnection openConnection(URL url) throws IOException {
          return record(plain(url).openConnection());
        }

        @Override
        protected URLConnection openConnection(URL url, Proxy proxy) throws IOException {
          return record(plain(url).openConnection(proxy));
        }
      };

  /**
   * @param origin the repository's URL, whose origin is allowed
   * @param timeoutMillis connect timeout, and read timeout between two reads, of every request
   */
  GuardedConnectionFactory(URI origin, int timeoutMillis) {
    this.timeoutMillis = timeoutMillis;
    allow(origin);
  }

  /** Allows connections to {@code uri}'s scheme, host and port too (a checked submodule's). */
  void allow(URI uri) {
    origins.add(origin(uri.getScheme(), uri.getHost(), uri.getPort()));
  }

  /** Whether {@code uri} is on an allowed origin. */
  boolean allows(URIish uri) {
    return uri.getScheme() != null
        && uri.getHost() != null
        && origins.contains(origin(uri.getScheme(), uri.getHost(), uri.getPort()));
  }

  /** Closes every connection opened so far and refuses new ones. Safe from any thread. */
  void abort() {
    List<HttpURLConnection> open;
    synchronized (this) {
      aborted = true;
      open = List.copyOf(opened);
      opened.clear();
    }
    // disconnect() closes the socket, so a read blocked on it fails at once.
    open.forEach(HttpURLConnection::disconnect);
  }

  @Override
  public HttpConnection create(URL url) throws IOException {
    TimedConnection connection = new TimedConnection(guard(url));
    return connection.timeouts(timeoutMillis);
  }

  @Override
  public HttpConnection create(URL url, Proxy proxy) throws IOException {
    TimedConnection connection = new TimedConnection(guard(url), proxy);
    return connection.timeouts(timeoutMillis);
  }

  @Override
  public GitSession newSession() {
    return delegate.newSession();
  }

  private URL guard(URL url) throws IOException {
    synchronized (this) {
      if (aborted) {
        throw new InterruptedIOException("the clone was cancelled");
      }
    }
    if (!origins.contains(origin(url.getProtocol(), url.getHost(), url.getPort()))) {
      throw new OriginRefusedException(
          "the server sent the clone to "
              + url.getProtocol()
              + "://"
              + url.getHost()
              + (url.getPort() < 0 ? "" : ":" + url.getPort())
              + ", another host than repo_url's; such redirects are refused so that the token"
              + " stays with repo_url's host: use the repository's final URL");
    }
    return new URL(null, url.toExternalForm(), recorder);
  }

  private URLConnection record(URLConnection connection) throws IOException {
    if (connection instanceof HttpURLConnection http) {
      synchronized (this) {
        if (aborted) {
          throw new InterruptedIOException("the clone was cancelled");
        }
        opened.add(http);
      }
    }
    return connection;
  }

  /** The same URL with the JDK's own handler, which does the real work. */
  private static URL plain(URL url) throws IOException {
    return new URL(url.toExternalForm());
  }

  private static String origin(String scheme, String host, int port) {
    String s = scheme.toLowerCase(Locale.ROOT);
    int effective = port >= 0 ? port : s.equals("https") ? 443 : s.equals("http") ? 80 : -1;
    return s + "://" + host.toLowerCase(Locale.ROOT) + ":" + effective;
  }

  /**
   * JGit's JDK connection, still one for the session's TLS set-up, with the clone's timeouts
   * fixed: JGit's calls to change them are ignored.
   */
  private static final class TimedConnection extends JDKHttpConnection {
    TimedConnection(URL url) throws IOException {
      super(url);
    }

    TimedConnection(URL url, Proxy proxy) throws IOException {
      super(url, proxy);
    }

    TimedConnection timeouts(int millis) {
      super.setConnectTimeout(millis);
      super.setReadTimeout(millis);
      return this;
    }

    @Override
    public void setConnectTimeout(int ignored) {}

    @Override
    public void setReadTimeout(int ignored) {}
  }

  /** A connection to an origin the clone was not allowed, after a redirect. */
  static final class OriginRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    OriginRefusedException(String message) {
      super(message);
    }
  }
}

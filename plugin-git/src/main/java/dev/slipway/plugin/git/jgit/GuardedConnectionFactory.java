package dev.slipway.plugin.git.jgit;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
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
 * JGit's own JDK connection factory for one clone, with four additions.
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
 *   <li>It counts every byte read from the server's answers against the clone's {@link SizeLimit},
 *       as they arrive: the read that passes {@code max-checkout-size} fails, so a pack larger
 *       than the limit is stopped while it is sent, not once it is on disk.
 * </ul>
 *
 * <p>To reach the JDK connection that JGit's {@code JDKHttpConnection} wraps, the URL handed to
 * it carries a stream handler that opens the connection itself and records it.
 */
final class GuardedConnectionFactory implements HttpConnectionFactory2 {
  private final JDKHttpConnectionFactory delegate = new JDKHttpConnectionFactory();
  private final int timeoutMillis;
  private final SizeLimit limit;
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
    this(origin, timeoutMillis, null);
  }

  /**
   * @param origin the repository's URL, whose origin is allowed
   * @param timeoutMillis connect timeout, and read timeout between two reads, of every request
   * @param limit counts the bytes received; null for none
   */
  GuardedConnectionFactory(URI origin, int timeoutMillis, SizeLimit limit) {
    this.timeoutMillis = timeoutMillis;
    this.limit = limit;
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
    TimedConnection connection = new TimedConnection(guard(url), limit);
    return connection.timeouts(timeoutMillis);
  }

  @Override
  public HttpConnection create(URL url, Proxy proxy) throws IOException {
    TimedConnection connection = new TimedConnection(guard(url), proxy, limit);
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
   * fixed (JGit's calls to change them are ignored) and its answer counted.
   */
  private static final class TimedConnection extends JDKHttpConnection {
    private final SizeLimit limit;
    private InputStream counted;
    private InputStream raw;

    TimedConnection(URL url, SizeLimit limit) throws IOException {
      super(url);
      this.limit = limit;
    }

    TimedConnection(URL url, Proxy proxy, SizeLimit limit) throws IOException {
      super(url, proxy);
      this.limit = limit;
    }

    /**
     * The answer's body as it comes off the socket, before JGit undoes any gzip encoding: the
     * bytes the server really sent.
     */
    @Override
    public synchronized InputStream getInputStream() throws IOException {
      InputStream in = super.getInputStream();
      if (limit == null) {
        return in;
      }
      if (in != raw) {
        raw = in;
        counted = new CountingInputStream(in, limit);
      }
      return counted;
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

  /** Counts what is read (and skipped, which is read from the socket too) against the limit. */
  private static final class CountingInputStream extends FilterInputStream {
    private final SizeLimit limit;

    CountingInputStream(InputStream in, SizeLimit limit) {
      super(in);
      this.limit = limit;
    }

    @Override
    public int read() throws IOException {
      int b = super.read();
      limit.received(b < 0 ? 0 : 1);
      return b;
    }

    @Override
    public int read(byte[] buffer, int offset, int length) throws IOException {
      int n = super.read(buffer, offset, length);
      limit.received(Math.max(n, 0));
      return n;
    }

    @Override
    public long skip(long n) throws IOException {
      long skipped = super.skip(n);
      limit.received(Math.max(skipped, 0));
      return skipped;
    }
  }

  /** A connection to an origin the clone was not allowed, after a redirect. */
  static final class OriginRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    OriginRefusedException(String message) {
      super(message);
    }
  }
}

package dev.slipway.plugin.git.jgit;

import dev.slipway.plugin.git.UrlPolicy;
import java.io.ByteArrayOutputStream;
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
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.eclipse.jgit.transport.URIish;
import org.eclipse.jgit.transport.http.HttpConnection;
import org.eclipse.jgit.transport.http.HttpConnectionFactory2;
import org.eclipse.jgit.transport.http.JDKHttpConnection;
import org.eclipse.jgit.transport.http.JDKHttpConnectionFactory;

/**
 * JGit's own JDK connection factory for one clone, with five additions.
 *
 * <ul>
 *   <li>It connects only to the origins (scheme, host, port) the clone was allowed: JGit follows
 *       redirects and keeps sending basic credentials after one, so a redirect elsewhere would
 *       hand the token to another host. Such a connection fails with {@link OriginRefusedException}.
 *   <li>Through {@link #forRepository}, each transport's requests stay on its repository's own
 *       path: a same-host redirect to another repository would clone one nobody checked against
 *       the caller's allow-list. Such a request fails with {@link PathRefusedException}.
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
  /**
   * What git's HTTP protocol asks for below a repository's path: smart HTTP's two endpoints, and
   * the dumb protocol's files.
   */
  private static final Pattern GIT_REQUEST =
      Pattern.compile(
          "info/refs|git-upload-pack|HEAD|objects/(info/(packs|alternates|http-alternates)"
              + "|[0-9a-f]{2}/[0-9a-f]{38,62}|pack/pack-[0-9a-f]{40,64}\\.(pack|idx))");

  private final JDKHttpConnectionFactory delegate = new JDKHttpConnectionFactory();
  private final int timeoutMillis;
  private final SizeLimit limit;
  private final Set<String> origins = ConcurrentHashMap.newKeySet();
  private final Set<String> repositories = ConcurrentHashMap.newKeySet();
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

  /**
   * Allows connections to {@code uri}'s scheme, host and port too, and transports for its
   * repository (a checked submodule's).
   */
  void allow(URI uri) {
    String origin = origin(uri.getScheme(), uri.getHost(), uri.getPort());
    origins.add(origin);
    repositories.add(origin + repositoryPath(uri.getRawPath()));
  }

  /** Whether {@code uri} names a repository that was allowed: same origin, same path. */
  boolean allowsRepository(URIish uri) {
    return allows(uri)
        && repositories.contains(
            origin(uri.getScheme(), uri.getHost(), uri.getPort()) + repositoryPath(uri.getRawPath()));
  }

  /** A repository's path as requests are compared with it: decoded, no trailing '/'. */
  private static String repositoryPath(String rawPath) {
    String path = decode(rawPath == null ? "" : rawPath);
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    return path;
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

  /**
   * This factory for the transport of one repository: it also refuses every request outside that
   * repository's path, such as a redirect from {@code /acme/app.git/info/refs} to {@code
   * /evil/x.git/info/refs} on the same host. JGit follows such a redirect and clones from there
   * on, so the repository cloned would not be the one the caller's allow-list was checked against.
   * Each request's path must be the repository's path followed by one of the paths git's HTTP
   * protocol asks for ({@code /info/refs}, {@code /git-upload-pack}, and the dumb protocol's
   * {@code /HEAD} and {@code /objects/...}); anything else fails with {@link
   * PathRefusedException}.
   *
   * @param repository the URL the transport was opened for, already checked
   */
  HttpConnectionFactory2 forRepository(URIish repository) {
    String repositoryPath = repositoryPath(repository.getRawPath());
    return new HttpConnectionFactory2() {
      @Override
      public HttpConnection create(URL url) throws IOException {
        checkPath(url, repositoryPath);
        return GuardedConnectionFactory.this.create(url);
      }

      @Override
      public HttpConnection create(URL url, Proxy proxy) throws IOException {
        checkPath(url, repositoryPath);
        return GuardedConnectionFactory.this.create(url, proxy);
      }

      @Override
      public GitSession newSession() {
        return GuardedConnectionFactory.this.newSession();
      }
    };
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

  /** Refuses a request for another path than {@code repositoryPath}'s git endpoints. */
  private static void checkPath(URL url, String repositoryPath) throws PathRefusedException {
    String raw = url.getPath(); // java.net.URL keeps the path as sent, escapes and all
    Optional<String> problem = UrlPolicy.pathProblem(raw);
    if (problem.isPresent()) {
      throw new PathRefusedException(
          "the server redirected the clone of "
              + repositoryPath
              + " to a path that "
              + problem.get()
              + "; such redirects are refused: use the repository's final URL");
    }
    String path = decode(raw);
    String prefix = repositoryPath + "/";
    if (path.startsWith(prefix) && GIT_REQUEST.matcher(path.substring(prefix.length())).matches()) {
      return;
    }
    throw new PathRefusedException(
        "the server redirected the clone from "
            + repositoryPath
            + " to "
            + shown(repositoryOf(path))
            + ", another repository path on the same host; a redirect that changes the"
            + " repository is refused, since the repository cloned would not be the one checked"
            + " against the caller's allowed repositories: use the repository's final URL");
  }

  /** {@code path} without the git endpoint it ends with, if any: the repository it names. */
  private static String repositoryOf(String path) {
    for (int slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      if (GIT_REQUEST.matcher(path.substring(slash + 1)).matches()) {
        return path.substring(0, slash);
      }
    }
    return path;
  }

  /** A server-chosen path in a message: printable and short. */
  private static String shown(String path) {
    String printable = path.codePoints()
        .map(c -> Character.isISOControl(c) ? '?' : c)
        .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append)
        .toString();
    return printable.length() <= 200 ? printable : printable.substring(0, 200) + "...";
  }

  /** Percent-escapes decoded as UTF-8; '+' stays '+', as in a URL's path. */
  private static String decode(String raw) {
    if (raw.indexOf('%') < 0) {
      return raw;
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      int high = c == '%' && i + 2 < raw.length() ? hex(raw.charAt(i + 1)) : -1;
      int low = high < 0 ? -1 : hex(raw.charAt(i + 2));
      if (low >= 0) {
        bytes.write(high * 16 + low);
        i += 2;
      } else {
        byte[] encoded = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
        bytes.write(encoded, 0, encoded.length);
      }
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  private static int hex(char c) {
    return c < 0x80 ? Character.digit(c, 16) : -1;
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

  /** A request for another path than the repository's, after a redirect on the same host. */
  static final class PathRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    PathRefusedException(String message) {
      super(message);
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

package dev.slipway.worker.runtime.security;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;

/**
 * The form of a repository URL that allow-lists are matched against: scheme and host in lower
 * case, the scheme's default port dropped, no credentials, query or fragment, no trailing slash
 * and no {@code .git}; percent-escapes decoded. {@code https://tok@GitHub.com:443/acme/app.git/}
 * becomes {@code https://github.com/acme/app}.
 *
 * <p>A path that git servers could read as another repository than the one checked is refused,
 * not resolved: empty segments ({@code //}), {@code .} and {@code ..} segments, backslashes,
 * control characters, and escapes of {@code /}, {@code \}, {@code .} or {@code %} themselves.
 * Servers differ in whether they merge slashes, resolve dot segments or decode escapes, so the
 * only safe form is one that every server reads the same way.
 */
final class RepositoryUrls {
  private RepositoryUrls() {}

  /** Why a URL is refused, or the normalised URL. */
  sealed interface Result {}

  record Normalised(String url) implements Result {}

  record Refused(String why) implements Result {}

  static Result normalise(String url) {
    URI uri;
    try {
      uri = new URI(url.strip());
    } catch (URISyntaxException e) {
      return new Refused("it is not a URL: " + e.getReason());
    }
    if (uri.getScheme() == null || uri.getHost() == null || uri.isOpaque()) {
      return new Refused("it is not an absolute URL with a host");
    }
    String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
    String host = uri.getHost().toLowerCase(Locale.ROOT);
    int port = uri.getPort();
    boolean defaultPort = port == -1 || (scheme.equals("https") && port == 443)
        || (scheme.equals("http") && port == 80) || (scheme.equals("ssh") && port == 22);
    String raw = uri.getRawPath() == null ? "" : uri.getRawPath();
    String lower = raw.toLowerCase(Locale.ROOT);
    for (String escape : new String[] {"%2f", "%5c", "%2e", "%25", "%00"}) {
      if (lower.contains(escape)) {
        return new Refused("its path escapes '" + escape + "' ('/', '\\', '.', '%' or NUL),"
            + " which git servers read differently; write the path plainly");
      }
    }
    String path = uri.getPath() == null ? "" : uri.getPath();
    if (path.indexOf('\\') >= 0 || path.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
      return new Refused("its path has a backslash or a control character");
    }
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    String[] segments = path.split("/", -1);
    for (int i = 1; i < segments.length; i++) {
      String segment = segments[i];
      if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
        return new Refused("its path has an empty, '.' or '..' segment, which servers resolve"
            + " differently; write the repository's own path");
      }
    }
    if (!path.isEmpty() && !path.startsWith("/")) {
      return new Refused("its path is not absolute");
    }
    if (path.endsWith(".git")) {
      path = path.substring(0, path.length() - 4);
    }
    return new Normalised(scheme + "://" + host + (defaultPort ? "" : ":" + port) + path);
  }

  /** A pattern normalised like a URL, as far as a glob can be: lower-case scheme and host. */
  static String normalisePattern(String pattern) {
    String p = pattern.strip();
    int schemeEnd = p.indexOf("://");
    if (schemeEnd > 0) {
      int hostEnd = p.indexOf('/', schemeEnd + 3);
      String head = hostEnd < 0 ? p : p.substring(0, hostEnd);
      p = head.toLowerCase(Locale.ROOT) + (hostEnd < 0 ? "" : p.substring(hostEnd));
      if (p.matches("https://[^/]*:443(/.*)?")) {
        p = p.replaceFirst(":443", "");
      } else if (p.matches("http://[^/]*:80(/.*)?")) {
        p = p.replaceFirst(":80", "");
      }
    }
    while (p.endsWith("/") && p.length() > 1) {
      p = p.substring(0, p.length() - 1);
    }
    if (p.endsWith(".git")) {
      p = p.substring(0, p.length() - 4);
    }
    return p;
  }
}

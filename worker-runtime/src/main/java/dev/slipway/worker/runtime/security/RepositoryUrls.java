package dev.slipway.worker.runtime.security;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;
import java.util.Optional;

/**
 * The form of a repository URL that allow-lists are matched against: scheme and host in lower
 * case, the scheme's default port dropped, no credentials, query or fragment, no trailing slash
 * and no {@code .git}. {@code https://tok@GitHub.com:443/acme/app.git/} becomes
 * {@code https://github.com/acme/app}.
 */
final class RepositoryUrls {
  private RepositoryUrls() {}

  /** The normalised URL, or empty when {@code url} is not an absolute URL with a host. */
  static Optional<String> normalise(String url) {
    URI uri;
    try {
      uri = new URI(url.strip());
    } catch (URISyntaxException e) {
      return Optional.empty();
    }
    if (uri.getScheme() == null || uri.getHost() == null || uri.isOpaque()) {
      return Optional.empty();
    }
    String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
    String host = uri.getHost().toLowerCase(Locale.ROOT);
    int port = uri.getPort();
    boolean defaultPort = port == -1 || (scheme.equals("https") && port == 443)
        || (scheme.equals("http") && port == 80) || (scheme.equals("ssh") && port == 22);
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    // Dot segments could dress one repository up as another: resolve them first.
    path = URI.create("x:" + (path.isEmpty() ? "/" : path)).normalize().getRawSchemeSpecificPart();
    path = path.replaceAll("/{2,}", "/");
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    if (path.endsWith(".git")) {
      path = path.substring(0, path.length() - 4);
    }
    return Optional.of(scheme + "://" + host + (defaultPort ? "" : ":" + port) + path);
  }

  /** A pattern normalised like a URL, as far as a glob can be: lower-case scheme and host. */
  static String normalisePattern(String pattern) {
    String p = pattern.strip();
    int schemeEnd = p.indexOf("://");
    if (schemeEnd > 0) {
      int hostEnd = p.indexOf('/', schemeEnd + 3);
      String head = hostEnd < 0 ? p : p.substring(0, hostEnd);
      p = head.toLowerCase(Locale.ROOT) + (hostEnd < 0 ? "" : p.substring(hostEnd));
      String lower = p;
      if (lower.startsWith("https://") && lower.matches("https://[^/]*:443(/.*)?")) {
        p = p.replaceFirst(":443", "");
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

package dev.slipway.plugin.buildkit;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.regex.Pattern;

/** Makes a repository URL fit for an image label: no user info, no query, no fragment. */
final class RepoUrls {
  private static final Pattern USER_INFO = Pattern.compile("^([A-Za-z][A-Za-z0-9+.-]*://)[^/]*@");

  private RepoUrls() {}

  /**
   * {@code url} without credentials: {@code https://user:token@host/repo.git?x=1} becomes {@code
   * https://host/repo.git}. A value that does not parse as a URI loses whatever stands between
   * {@code scheme://} and the last {@code @} before the path; an scp-like {@code git@host:path}
   * (no scheme, no credential) only loses its query and fragment.
   */
  static String withoutCredentials(String url) {
    String trimmed = url.strip();
    try {
      URI uri = new URI(trimmed);
      if (uri.getScheme() != null && uri.getRawAuthority() != null) {
        String authority = uri.getRawAuthority();
        int at = authority.lastIndexOf('@');
        String hostPort = at < 0 ? authority : authority.substring(at + 1);
        String path = uri.getRawPath() == null ? "" : uri.getRawPath();
        return uri.getScheme() + "://" + hostPort + path;
      }
    } catch (URISyntaxException e) {
      // not a URI: fall through to the textual clean-up
    }
    String noUser = USER_INFO.matcher(trimmed).replaceFirst("$1");
    int cut = indexOfAny(noUser, '?', '#');
    return cut < 0 ? noUser : noUser.substring(0, cut);
  }

  private static int indexOfAny(String value, char a, char b) {
    int i = value.indexOf(a);
    int j = value.indexOf(b);
    if (i < 0) {
      return j;
    }
    return j < 0 ? i : Math.min(i, j);
  }
}

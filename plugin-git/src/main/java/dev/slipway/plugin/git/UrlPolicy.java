package dev.slipway.plugin.git;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Which repository URLs the stage clones from: absolute URLs with an allowed scheme, a host and a
 * path, and nothing that could hurt the worker. Git accepts far more (local paths, {@code file:},
 * {@code ext::} commands, options disguised as URLs), and every one of those reads the worker's
 * disk or runs a program on it. Used for {@code repo_url} and for every submodule URL.
 */
public final class UrlPolicy {
  /** The schemes the stage can clone over, in order of preference. */
  public static final List<String> SUPPORTED_SCHEMES = List.of("https", "http");

  /** Git's {@code <transport>::<address>} syntax, which hands the address to a helper program. */
  private static final Pattern REMOTE_HELPER = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*::");

  /** A scheme followed by "://", as an absolute URL starts. */
  private static final Pattern ABSOLUTE = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*://.*");

  private final List<String> allowedSchemes;

  /** A policy that accepts the given schemes, which must be among {@link #SUPPORTED_SCHEMES}. */
  public UrlPolicy(Collection<String> allowedSchemes) {
    for (String scheme : allowedSchemes) {
      if (!SUPPORTED_SCHEMES.contains(scheme)) {
        throw new IllegalArgumentException(
            "scheme " + scheme + " is not one of " + SUPPORTED_SCHEMES);
      }
    }
    this.allowedSchemes = List.copyOf(allowedSchemes);
  }

  /** The schemes this policy accepts. */
  public List<String> allowedSchemes() {
    return allowedSchemes;
  }

  /**
   * What is wrong with {@code url}, if anything, as a phrase that says what would be right. The
   * phrase never repeats more of the URL than its scheme, since a refused URL may hold a secret.
   */
  public Optional<String> problem(String url) {
    if (url.isBlank()) {
      return Optional.of("is empty; give the repository's URL, e.g. " + example());
    }
    if (url.startsWith("-")) {
      return Optional.of("must not start with '-' (git would read it as an option)");
    }
    if (REMOTE_HELPER.matcher(url).find()) {
      return Optional.of(
          "uses git's '<transport>::' syntax (such as ext::), which runs programs on the worker;"
              + " give a URL such as "
              + example());
    }
    for (int i = 0; i < url.length(); i++) {
      char c = url.charAt(i);
      if (c <= ' ' || c == 0x7f || c == '\\') {
        return Optional.of("must not contain spaces, control characters or backslashes");
      }
    }
    if (url.regionMatches(true, 0, "file:", 0, "file:".length())) {
      return Optional.of(
          "file: URLs are refused because they read the worker's own disk; give a URL such as "
              + example());
    }
    if (!ABSOLUTE.matcher(url).matches()) {
      return Optional.of(
          "is a local path or an scp-style address, which are refused; give a URL whose scheme"
              + " is one of "
              + allowedSchemes
              + ", e.g. "
              + example());
    }
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      return Optional.of("is not a valid URL (" + e.getReason() + "); e.g. " + example());
    }
    String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
    if (!allowedSchemes.contains(scheme)) {
      return Optional.of(
          "scheme '" + scheme + "' is not allowed; allowed schemes: " + allowedSchemes);
    }
    String authority = uri.getRawAuthority();
    if (authority != null && authority.contains("@")) {
      // A credential in the URL ends up in .git/config and in logs; the token field is the way.
      return Optional.of(
          "must not contain credentials (user@ or user:password@); pass the token in"
              + " github_token");
    }
    if (uri.getHost() == null || uri.getHost().isEmpty()) {
      return Optional.of("has no valid host; e.g. " + example());
    }
    if (uri.getRawQuery() != null || uri.getRawFragment() != null) {
      return Optional.of("must not have a query (?...) or fragment (#...)");
    }
    String path = uri.getRawPath();
    if (path == null || path.isEmpty() || path.equals("/")) {
      return Optional.of("has no repository path; e.g. " + example());
    }
    return pathProblem(path)
        .map(p -> p + "; give the repository's own path plainly, e.g. " + example());
  }

  /**
   * What makes a URL's raw {@code path} one that git servers could read as another repository
   * than the one a checker sees, if anything: an empty segment ({@code //}), a {@code .} or
   * {@code ..} segment (also with {@code ;parameters}, which some Java servers drop), a backslash,
   * a control character, or an escaped {@code /}, {@code \}, {@code .}, {@code %} or control
   * character. nginx merges slashes, Go's {@code path.Clean} and Python servers resolve dot
   * segments, some servers decode those escapes before routing; JGit sends the path as written.
   * One trailing {@code /} is allowed: every server reads it the same way. The phrase repeats
   * nothing of the path but the offending escape.
   *
   * @param rawPath the path as sent, escapes not decoded
   */
  public static Optional<String> pathProblem(String rawPath) {
    for (int i = 0; i < rawPath.length(); i++) {
      char c = rawPath.charAt(i);
      if (c < ' ' || c == 0x7f || c == '\\') {
        return Optional.of("has a backslash or a control character in its path");
      }
      int high = c == '%' && i + 2 < rawPath.length() ? hex(rawPath.charAt(i + 1)) : -1;
      int low = high < 0 ? -1 : hex(rawPath.charAt(i + 2));
      if (low >= 0) {
        int b = high * 16 + low;
        if (b == '/' || b == '\\' || b == '.' || b == '%' || b < ' ' || b == 0x7f) {
          return Optional.of(
              "has the escape '"
                  + rawPath.substring(i, i + 3)
                  + "' in its path (an escaped "
                  + escaped(b)
                  + "), which some git servers decode before they look up the repository and"
                  + " others do not, so the repository cloned could be another than the one"
                  + " checked");
        }
      }
    }
    String trimmed = rawPath.startsWith("/") ? rawPath.substring(1) : rawPath;
    if (trimmed.endsWith("/")) {
      trimmed = trimmed.substring(0, trimmed.length() - 1);
    }
    for (String segment : trimmed.split("/", -1)) {
      if (segment.isEmpty()) {
        return Optional.of(
            "has an empty segment ('//') in its path, which some git servers merge into one '/'"
                + " and others do not, so the repository cloned could be another than the one"
                + " checked");
      }
      int parameters = segment.indexOf(';');
      String name = parameters < 0 ? segment : segment.substring(0, parameters);
      if (name.equals(".") || name.equals("..")) {
        return Optional.of(
            "has a '" + name + "' segment in its path, which some git servers resolve and others"
                + " do not, so the repository cloned could be another than the one checked");
      }
    }
    return Optional.empty();
  }

  private static int hex(char c) {
    return c < 0x80 ? Character.digit(c, 16) : -1;
  }

  private static String escaped(int b) {
    return switch (b) {
      case '/' -> "'/'";
      case '\\' -> "backslash";
      case '.' -> "'.'";
      case '%' -> "'%', which decodes to another escape";
      default -> "control character";
    };
  }

  /**
   * The URL to clone, with its scheme in lower case (JGit matches schemes case-sensitively).
   *
   * @throws IllegalArgumentException when {@link #problem} finds one
   */
  public URI normalize(String url) {
    problem(url)
        .ifPresent(
            p -> {
              throw new IllegalArgumentException("refused URL: " + p);
            });
    int colon = url.indexOf(':');
    return URI.create(url.substring(0, colon).toLowerCase(Locale.ROOT) + url.substring(colon));
  }

  private String example() {
    String scheme = allowedSchemes.isEmpty() ? SUPPORTED_SCHEMES.get(0) : allowedSchemes.get(0);
    return scheme + "://github.com/owner/repo.git";
  }
}

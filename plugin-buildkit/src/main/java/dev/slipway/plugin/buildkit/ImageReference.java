package dev.slipway.plugin.buildkit;

import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Checks image references against the grammar of the Docker reference library
 * ({@code distribution/reference}): {@code [domain[:port]/]path[:tag]}, path components in lower
 * case. Digests are refused: a build names a tag, not a digest.
 */
final class ImageReference {
  private static final String DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
  private static final String DOMAIN =
      DOMAIN_COMPONENT + "(?:\\." + DOMAIN_COMPONENT + ")*(?::[0-9]+)?";
  private static final String PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
  private static final String TAG = "[\\w][\\w.-]{0,127}";
  private static final Pattern REFERENCE =
      Pattern.compile(
          "(?:(?<domain>" + DOMAIN + ")/)?"
              + "(?<path>" + PATH_COMPONENT + "(?:/" + PATH_COMPONENT + ")*)"
              + "(?::(?<tag>" + TAG + "))?");
  private static final int MAX_NAME_LENGTH = 255;

  private ImageReference() {}

  /**
   * Why {@code reference} is not a valid {@code repository[:tag]}, or empty when it is.
   *
   * @param reference the reference to check
   */
  static Optional<String> problem(String reference) {
    if (reference.isBlank()) {
      return Optional.of("is empty; expected repository[:tag], e.g. 'app:1.2'");
    }
    if (reference.contains("@")) {
      return Optional.of(
          "'" + reference + "' has a digest; a build needs repository[:tag], e.g. 'app:1.2'");
    }
    if (reference.length() > 2 * MAX_NAME_LENGTH) {
      return Optional.of("is longer than " + 2 * MAX_NAME_LENGTH + " characters");
    }
    var matcher = REFERENCE.matcher(reference);
    if (!matcher.matches() || !isDomainOrPath(matcher.group("domain"))) {
      return Optional.of(
          "'"
              + printable(reference)
              + "' is not a valid image reference: expected repository[:tag] with a lower-case"
              + " repository (letters, digits, '.', '_', '-', path components separated by '/')"
              + " and a tag of at most 128 letters, digits, '_', '.', '-', e.g."
              + " 'registry.example.com:5000/team/app:1.2'");
    }
    int nameLength = reference.length() - (matcher.group("tag") == null ? 0 : matcher.group("tag").length() + 1);
    if (nameLength > MAX_NAME_LENGTH) {
      return Optional.of(
          "'" + printable(reference) + "' has a repository name longer than " + MAX_NAME_LENGTH + " characters");
    }
    return Optional.empty();
  }

  /**
   * Docker reads the first component as a registry host only when it has a '.' or a ':' or is
   * {@code localhost}; otherwise it is a path component and must be lower case.
   */
  private static boolean isDomainOrPath(String first) {
    return first == null
        || first.contains(".")
        || first.contains(":")
        || first.equals("localhost")
        || first.matches(PATH_COMPONENT);
  }

  static boolean isValid(String reference) {
    return problem(reference).isEmpty();
  }

  /** The value cut to a readable length with control characters escaped, for messages. */
  static String printable(String value) {
    String cut = value.length() > 300 ? value.substring(0, 300) + "..." : value;
    StringBuilder out = new StringBuilder(cut.length());
    cut.codePoints()
        .forEach(
            c -> {
              if (Character.isISOControl(c)) {
                out.append(String.format("\\u%04x", c));
              } else {
                out.appendCodePoint(c);
              }
            });
    return out.toString();
  }
}

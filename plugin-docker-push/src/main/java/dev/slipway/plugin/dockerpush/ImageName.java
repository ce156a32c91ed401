package dev.slipway.plugin.dockerpush;

import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A job's {@code image_name} as Docker reads it: {@code [registry/]repository[:tag]}. The first
 * path component is a registry host when it contains a dot or a colon, is {@code localhost}, or
 * has upper-case letters (Docker's own rule); otherwise the whole path is the repository.
 *
 * @param registry the registry host (with port), when the name carries one
 * @param repository the repository path, e.g. {@code team/app}
 * @param tag the tag, when the name carries one
 */
record ImageName(Optional<String> registry, String repository, Optional<String> tag) {

  /** The tag used when {@code image_name} has none. */
  static final String DEFAULT_TAG = "latest";

  private static final String COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
  private static final Pattern REPOSITORY = Pattern.compile(COMPONENT + "(?:/" + COMPONENT + ")*");
  /** A tag: Docker's grammar, {@code [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}}. */
  static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  private static final String LABEL = "(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)";
  private static final String HOST_FORM = "(?:" + LABEL + "(?:\\." + LABEL + ")*|\\[[0-9a-fA-F:.]+\\])";
  /** A host: a DNS name or IPv4 address, or a bracketed IPv6 address, without port. */
  static final Pattern HOST = Pattern.compile(HOST_FORM);
  /** A registry host: a DNS name or IPv4 address, or a bracketed IPv6 address, with optional port. */
  static final Pattern REGISTRY = Pattern.compile(HOST_FORM + "(?::[0-9]{1,5})?");
  private static final int MAX_NAME_LENGTH = 255;

  /**
   * Parses {@code image_name}.
   *
   * @throws IllegalArgumentException with a message that says what is wrong and what would be right
   */
  static ImageName parse(String imageName) {
    String name = imageName.strip();
    if (name.isEmpty()) {
      throw new IllegalArgumentException("image_name is empty; give repository[:tag], e.g. team/app:1.2");
    }
    if (name.contains("@")) {
      throw new IllegalArgumentException(
          "image_name '" + imageName + "' carries a digest; give repository[:tag]: the registry"
              + " assigns the digest when the image is pushed");
    }
    String remainder = name;
    Optional<String> registry = Optional.empty();
    int slash = name.indexOf('/');
    if (slash > 0) {
      String first = name.substring(0, slash);
      if (first.contains(".") || first.contains(":") || first.equals("localhost")
          || !first.toLowerCase(Locale.ROOT).equals(first)) {
        if (!REGISTRY.matcher(first).matches()) {
          throw new IllegalArgumentException(
              "image_name '" + imageName + "': '" + first + "' is not a registry host[:port]");
        }
        registry = Optional.of(first);
        remainder = name.substring(slash + 1);
      }
    }
    Optional<String> tag = Optional.empty();
    int colon = remainder.lastIndexOf(':');
    if (colon >= 0 && colon > remainder.lastIndexOf('/')) {
      String t = remainder.substring(colon + 1);
      if (!TAG.matcher(t).matches()) {
        throw new IllegalArgumentException(
            "image_name '" + imageName + "': tag '" + t + "' is not valid (letters, digits, '_', '.',"
                + " '-', at most 128, not starting with '.' or '-')");
      }
      tag = Optional.of(t);
      remainder = remainder.substring(0, colon);
    }
    if (!REPOSITORY.matcher(remainder).matches()) {
      throw new IllegalArgumentException(
          "image_name '" + imageName + "': repository '" + remainder + "' is not valid (lower-case"
              + " letters, digits and the separators '.', '_', '__', '-' between them, components"
              + " joined by '/')");
    }
    if (remainder.length() + registry.map(r -> r.length() + 1).orElse(0) > MAX_NAME_LENGTH) {
      throw new IllegalArgumentException(
          "image_name '" + imageName + "' is longer than " + MAX_NAME_LENGTH + " characters");
    }
    return new ImageName(registry, remainder, tag);
  }

  /** The push target when the image goes to {@code registry}, with tag {@code latest} if none. */
  Target in(String registry) {
    return new Target(registry, repository, tag.orElse(DEFAULT_TAG));
  }

  /**
   * Where an image is pushed to.
   *
   * @param registry the registry host, with port if any
   * @param repository the repository path inside the registry
   * @param tag the tag
   */
  record Target(String registry, String repository, String tag) {
    /** {@code registry/repository}, what {@code docker push} calls the name. */
    String name() {
      return registry + "/" + repository;
    }

    /** The same registry and repository under {@code other}. */
    Target withTag(String other) {
      return new Target(registry, repository, other);
    }

    /** {@code registry/repository:tag}, the full reference. */
    String reference() {
      return name() + ":" + tag;
    }

    @Override
    public String toString() {
      return reference();
    }
  }

  /**
   * A registry host in the form used to compare two of them: lower case, without scheme or
   * trailing slash, Docker Hub's aliases folded into {@code docker.io}.
   */
  static String canonicalRegistry(String registry) {
    String r = registry.strip().toLowerCase(Locale.ROOT);
    if (r.startsWith("https://")) {
      r = r.substring("https://".length());
    } else if (r.startsWith("http://")) {
      r = r.substring("http://".length());
    }
    while (r.endsWith("/")) {
      r = r.substring(0, r.length() - 1);
    }
    if (r.equals("index.docker.io") || r.equals("registry-1.docker.io") || r.equals("registry.hub.docker.com")) {
      return "docker.io";
    }
    return r;
  }
}

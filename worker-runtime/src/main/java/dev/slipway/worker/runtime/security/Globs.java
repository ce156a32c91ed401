package dev.slipway.worker.runtime.security;

import java.util.regex.Pattern;

/**
 * Glob patterns as the allow-lists use them: {@code *} matches any run of characters within one
 * path segment (no {@code /}), {@code **} any run across segments, {@code ?} one character of a
 * segment. Everything else matches itself, case-sensitively, and the whole text must match.
 */
final class Globs {
  private Globs() {}

  static Pattern compile(String glob) {
    StringBuilder regex = new StringBuilder();
    StringBuilder literal = new StringBuilder();
    for (int i = 0; i < glob.length(); i++) {
      char c = glob.charAt(i);
      if (c == '*' || c == '?') {
        if (!literal.isEmpty()) {
          regex.append(Pattern.quote(literal.toString()));
          literal.setLength(0);
        }
        if (c == '?') {
          regex.append("[^/]");
        } else if (i + 1 < glob.length() && glob.charAt(i + 1) == '*') {
          regex.append(".*");
          i++;
        } else {
          regex.append("[^/]*");
        }
      } else {
        literal.append(c);
      }
    }
    if (!literal.isEmpty()) {
      regex.append(Pattern.quote(literal.toString()));
    }
    return Pattern.compile(regex.toString());
  }
}

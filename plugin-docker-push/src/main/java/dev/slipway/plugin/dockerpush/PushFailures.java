package dev.slipway.plugin.dockerpush;

import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Sorts a registry failure, as the engine or the registry's HTTP API words it, into what the stage
 * does about it. The engine passes registry errors on as text (e.g. {@code unauthorized:
 * authentication required}, {@code received unexpected HTTP status: 503 Service Unavailable}), so
 * the text is what there is to go by; an error code, when the engine gives one, counts first.
 */
final class PushFailures {
  private PushFailures() {}

  /** What to do about a failure. */
  enum Kind {
    /** Authentication or authorization: never retried ({@code push.denied}). */
    DENIED,
    /** Throttling, a server error or a broken connection: retried with backoff. */
    TRANSIENT,
    /** Anything else ({@code push.failed}). */
    FAILED
  }

  private static final Pattern DENIED =
      Pattern.compile(
          "(?i)unauthori[sz]ed|\\bdenied\\b|authentication required|no basic auth credentials"
              + "|\\bforbidden\\b|incorrect username or password|\\b(?:status|code|HTTP)[: ]+40[13]\\b"
              + "|\\b40[13] (?:unauthorized|forbidden)");

  private static final Pattern TRANSIENT =
      Pattern.compile(
          "(?i)\\b429\\b|toomanyrequests|too many requests|unexpected http status: 5\\d\\d"
              + "|\\b(?:status|code|HTTP)[: ]+5\\d\\d\\b|\\b5\\d\\d (?:internal server error|bad gateway"
              + "|service unavailable|gateway time-?out)|connection reset|broken pipe|\\beof\\b"
              + "|i/o timeout|tls handshake timeout|server misbehaving|service unavailable"
              + "|bad gateway|gateway time-?out|temporarily unavailable");

  static Kind classify(String message, Optional<Integer> code) {
    if (code.isPresent()) {
      int c = code.get();
      if (c == 401 || c == 403) {
        return Kind.DENIED;
      }
      if (c == 429 || (c >= 500 && c <= 599)) {
        return Kind.TRANSIENT;
      }
    }
    if (DENIED.matcher(message).find()) {
      return Kind.DENIED;
    }
    if (TRANSIENT.matcher(message).find()) {
      return Kind.TRANSIENT;
    }
    return Kind.FAILED;
  }

  /** The kind for an HTTP status of the registry's API. */
  static Kind ofStatus(int status) {
    if (status == 401 || status == 403) {
      return Kind.DENIED;
    }
    if (status == 429 || status >= 500) {
      return Kind.TRANSIENT;
    }
    return Kind.FAILED;
  }
}

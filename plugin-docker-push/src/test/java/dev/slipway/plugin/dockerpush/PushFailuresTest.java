package dev.slipway.plugin.dockerpush;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.slipway.plugin.dockerpush.PushFailures.Kind;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Messages as Docker 20.10 and common registries word them. */
class PushFailuresTest {

  @ParameterizedTest
  @ValueSource(strings = {
    "unauthorized: authentication required",
    "denied: requested access to the resource is denied",
    "no basic auth credentials",
    "denied: Your authorization token has expired. Reauthenticate and try again.",
    "unauthorized: incorrect username or password",
    "received unexpected HTTP status: 403 Forbidden",
    "error parsing HTTP 401 response body: unexpected end of JSON input: \"\"",
  })
  void authenticationAndAuthorizationAreDenials(String message) {
    assertEquals(Kind.DENIED, PushFailures.classify(message, Optional.empty()), message);
  }

  @ParameterizedTest
  @ValueSource(strings = {
    "received unexpected HTTP status: 503 Service Unavailable",
    "received unexpected HTTP status: 500 Internal Server Error",
    "toomanyrequests: You have reached your pull rate limit.",
    "error parsing HTTP 429 response body: invalid character",
    "Patch \"http://127.0.0.1:5000/v2/x/blobs/uploads/abc\": read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection reset by peer",
    "Put \"https://r/v2/x/manifests/1\": EOF",
    "net/http: TLS handshake timeout",
    "Get \"https://r/v2/\": dial tcp 10.0.0.1:443: i/o timeout",
  })
  void throttlingServerErrorsAndBrokenConnectionsAreTransient(String message) {
    assertEquals(Kind.TRANSIENT, PushFailures.classify(message, Optional.empty()), message);
  }

  @ParameterizedTest
  @ValueSource(strings = {
    "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
    "manifest invalid: manifest invalid",
    "An image does not exist locally with the tag: 127.0.0.1:5000/x",
    "name unknown: repository name not known to registry",
    "blob unknown: blob unknown to registry",
  })
  void everythingElseFails(String message) {
    assertEquals(Kind.FAILED, PushFailures.classify(message, Optional.empty()), message);
  }

  @Test
  void anErrorCodeCountsFirst() {
    assertEquals(Kind.DENIED, PushFailures.classify("something", Optional.of(401)));
    assertEquals(Kind.TRANSIENT, PushFailures.classify("something", Optional.of(502)));
    assertEquals(Kind.TRANSIENT, PushFailures.classify("something", Optional.of(429)));
    assertEquals(Kind.FAILED, PushFailures.classify("something", Optional.of(400)));
    assertEquals(Kind.DENIED, PushFailures.ofStatus(403));
    assertEquals(Kind.TRANSIENT, PushFailures.ofStatus(503));
    assertEquals(Kind.FAILED, PushFailures.ofStatus(400));
  }
}

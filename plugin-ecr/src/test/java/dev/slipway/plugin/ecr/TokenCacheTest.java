package dev.slipway.plugin.ecr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.Secret;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Decoding ECR's answer, the refresh rule and the cache's keys, without the network. */
class TokenCacheTest {
  private static final Instant T0 = Instant.parse("2026-11-27T08:00:00Z");

  private static AuthorizationData data(String userPassword, Instant expiresAt, String endpoint) {
    return new AuthorizationData(
        Optional.of(
            Secret.of(
                Base64.getEncoder().encodeToString(userPassword.getBytes(StandardCharsets.UTF_8)))),
        Optional.ofNullable(expiresAt),
        endpoint);
  }

  private static EcrToken token(Instant fetchedAt, Duration lifetime) throws EcrFailure {
    return EcrToken.decode(
        new TokenAnswer(List.of(data("AWS:pw", fetchedAt.plus(lifetime), "https://r.example")), 1),
        fetchedAt);
  }

  @Test
  void decodesUserPasswordAndTheRegistryHost() throws Exception {
    EcrToken token =
        EcrToken.decode(
            new TokenAnswer(
                List.of(
                    data("AWS:pa:ss", T0.plusSeconds(43200), "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
                    data("AWS:other", T0.plusSeconds(3600), "http://127.0.0.1:5000/")),
                2),
            T0);

    assertEquals("123456789012.dkr.ecr.eu-west-1.amazonaws.com", token.logins().get(0).registry());
    assertEquals("AWS", token.logins().get(0).username());
    assertEquals("pa:ss", token.logins().get(0).password().reveal(), "split at the first colon");
    assertEquals("127.0.0.1:5000", token.logins().get(1).registry(), "port kept, scheme and slash gone");
    assertEquals(Optional.of(T0.plusSeconds(3600)), token.expiresAt(), "the earliest expiry counts");
    assertEquals(2, token.attempts());
    assertFalse(token.logins().get(0).toString().contains("pa:ss"));
  }

  @Test
  void refusesAnswersThatAreNotTokens() {
    List<List<AuthorizationData>> bad =
        List.of(
            List.of(),
            List.of(new AuthorizationData(Optional.empty(), Optional.of(T0), "https://r")),
            List.of(new AuthorizationData(Optional.of(Secret.of("***")), Optional.of(T0), "https://r")),
            List.of(data("no-colon", T0, "https://r")),
            List.of(data(":password", T0, "https://r")),
            List.of(data("AWS:", T0, "https://r")),
            List.of(data("AWS:pw", T0, "")),
            List.of(data("AWS:pw", T0, "https://")));
    for (List<AuthorizationData> answer : bad) {
      EcrFailure e =
          assertThrows(
              EcrFailure.class, () -> EcrToken.decode(new TokenAnswer(answer, 1), T0), answer::toString);
      assertEquals(EcrFailure.Reason.INVALID_RESPONSE, e.reason());
    }
  }

  @Test
  void refreshesOnceLessThanTheShareRemains() throws Exception {
    EcrToken token = token(T0, Duration.ofHours(12));

    assertEquals(T0.plus(Duration.ofHours(6)), token.refreshAt(0.5));
    assertEquals(T0.plus(Duration.ofHours(9)), token.refreshAt(0.25));
    assertEquals(T0, token.refreshAt(1.0));
    assertTrue(token.freshAt(T0.plus(Duration.ofHours(6)).minusMillis(1), 0.5));
    assertFalse(token.freshAt(T0.plus(Duration.ofHours(6)), 0.5));
    assertFalse(token.freshAt(T0, 1.0), "share 1 never reuses");
  }

  @Test
  void aTokenWithoutExpiryIsForOneJob() throws Exception {
    EcrToken token =
        EcrToken.decode(new TokenAnswer(List.of(data("AWS:pw", null, "https://r")), 1), T0);
    assertFalse(token.freshAt(T0, 0.5));
  }

  @Test
  void keysThatDifferInAnyPartAreCachedApart() throws Exception {
    EcrTestSupport.TestClock clock = new EcrTestSupport.TestClock(T0);
    TokenCache cache = new TokenCache(clock);
    AtomicInteger fetches = new AtomicInteger();
    TokenCache.Fetcher fetcher =
        () -> {
          fetches.incrementAndGet();
          return token(clock.instant(), Duration.ofHours(12));
        };
    TokenCache.Key base = new TokenCache.Key("eu-west-1", "https://e", List.of(), "AKIA1");
    List<TokenCache.Key> keys =
        List.of(
            base,
            new TokenCache.Key("us-east-1", "https://e", List.of(), "AKIA1"),
            new TokenCache.Key("eu-west-1", "https://f", List.of(), "AKIA1"),
            new TokenCache.Key("eu-west-1", "https://e", List.of("111111111111"), "AKIA1"),
            new TokenCache.Key("eu-west-1", "https://e", List.of(), "AKIA2"));
    for (TokenCache.Key key : keys) {
      assertFalse(cache.get(key, 0.5, fetcher).cached());
      assertTrue(cache.get(key, 0.5, fetcher).cached());
    }
    assertEquals(5, fetches.get());
    assertEquals(5, cache.size());
    assertSame(
        cache.get(base, 0.5, fetcher).token(),
        cache.get(new TokenCache.Key("eu-west-1", "https://e", List.of(), "AKIA1"), 0.5, fetcher).token());
    assertFalse(base.toString().contains("AKIA1"), base::toString);
  }

  @Test
  void expiredEntriesAreDroppedSoRotatingKeysDoNotGrowTheCache() throws Exception {
    EcrTestSupport.TestClock clock = new EcrTestSupport.TestClock(T0);
    TokenCache cache = new TokenCache(clock);
    for (int i = 0; i < 50; i++) {
      cache.get(
          new TokenCache.Key("eu-west-1", "https://e", List.of(), "ASIA" + i),
          0.5,
          () -> token(clock.instant(), Duration.ofHours(12)));
      clock.advance(Duration.ofHours(1));
    }
    assertTrue(cache.size() <= 13, "entries: " + cache.size());
  }

  @Test
  void aFailedFetchCachesNothing() throws Exception {
    TokenCache cache = new TokenCache(new EcrTestSupport.TestClock(T0));
    TokenCache.Key key = new TokenCache.Key("eu-west-1", "https://e", List.of(), "AKIA1");
    assertThrows(
        EcrFailure.class,
        () ->
            cache.get(
                key,
                0.5,
                () -> {
                  throw new EcrFailure(EcrFailure.Reason.UNREACHABLE, "down");
                }));
    assertEquals(0, cache.size());
    assertFalse(cache.get(key, 0.5, () -> token(T0, Duration.ofHours(12))).cached());
  }
}

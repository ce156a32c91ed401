package dev.slipway.plugin.ecr;

import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * ECR tokens by what decides the answer: region, endpoint, registry ids and caller identity. A
 * token is handed out while more than the configured share of its lifetime remains, then fetched
 * anew. Concurrent jobs that miss wait for one fetch instead of each calling ECR; the wait is
 * interruptible, so a cancelled job does not wait. Expired entries are dropped whenever a token
 * is stored, so rotating temporary credentials do not make the cache grow.
 */
final class TokenCache {

  /**
   * What a token is for.
   *
   * @param region the AWS region
   * @param endpoint the endpoint called
   * @param registryIds the registry ids asked for, in order
   * @param identity who signed the call (the access key id)
   */
  record Key(String region, String endpoint, List<String> registryIds, String identity) {
    Key {
      Objects.requireNonNull(region, "region");
      Objects.requireNonNull(endpoint, "endpoint");
      registryIds = List.copyOf(registryIds);
      Objects.requireNonNull(identity, "identity");
    }

    @Override
    public String toString() {
      return "Key[region=" + region + ", endpoint=" + endpoint + ", registryIds=" + registryIds
          + ", identity=" + CredentialsSource.maskKeyId(identity) + "]";
    }
  }

  /** A token and whether it came from the cache. */
  record Lookup(EcrToken token, boolean cached) {}

  /** Fetches a token on a miss. */
  interface Fetcher {
    EcrToken fetch() throws EcrFailure, InterruptedException;
  }

  private static final class Slot {
    final ReentrantLock lock = new ReentrantLock();
    volatile EcrToken token;
  }

  private final ConcurrentHashMap<Key, Slot> slots = new ConcurrentHashMap<>();
  private final Clock clock;

  TokenCache(Clock clock) {
    this.clock = Objects.requireNonNull(clock, "clock");
  }

  /**
   * The token for {@code key}: the cached one while fresh, else a new one from {@code fetcher}.
   * A failed fetch caches nothing.
   *
   * @param share refresh once less than this share of the token's lifetime remains
   */
  Lookup get(Key key, double share, Fetcher fetcher) throws EcrFailure, InterruptedException {
    Slot slot = slots.computeIfAbsent(key, k -> new Slot());
    EcrToken current = slot.token;
    if (current != null && current.freshAt(clock.instant(), share)) {
      return new Lookup(current, true);
    }
    slot.lock.lockInterruptibly();
    try {
      current = slot.token;
      if (current != null && current.freshAt(clock.instant(), share)) {
        return new Lookup(current, true); // another job fetched it while this one waited
      }
      EcrToken fresh = fetcher.fetch();
      slot.token = fresh;
      evictExpired();
      return new Lookup(fresh, false);
    } finally {
      slot.lock.unlock();
    }
  }

  /**
   * Forgets the token of {@code key} if it is the one given: a registry refused it, so the next
   * job must ask ECR again rather than fail the same way until the token's refresh time.
   */
  void forget(Key key, EcrToken refused) {
    Slot slot = slots.get(key);
    if (slot != null && slot.token == refused) {
      slot.token = null;
    }
  }

  /** How many keys hold a token. */
  int size() {
    return (int) slots.values().stream().filter(s -> s.token != null).count();
  }

  private void evictExpired() {
    Instant now = clock.instant();
    slots.entrySet()
        .removeIf(
            e -> {
              EcrToken token = e.getValue().token;
              return token != null
                  && !token.expiresAt().orElse(token.fetchedAt()).isAfter(now)
                  && !e.getValue().lock.isLocked();
            });
  }
}

package dev.slipway.plugin.git.jgit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.plugin.git.CacheSettings;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.eclipse.jgit.api.Git;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The cache's layout, keys, locks and eviction, on disk, without a server. */
class MirrorCacheTest {
  @TempDir Path dir;

  private MirrorCache cache(long maxSize, Duration lockTimeout) throws Exception {
    return new MirrorCache(new CacheSettings(true, dir, maxSize, lockTimeout));
  }

  @Test
  void oneRepositoryHasOneKeyPerCredentialAndNoOtherShares() {
    URI url = URI.create("https://github.com/acme/app.git");
    String key = MirrorCache.key(url, Optional.of("token-a"));

    assertTrue(key.matches("[0-9a-f]{64}"), key);
    // The same repository, spelled otherwise.
    assertEquals(key, MirrorCache.key(URI.create("https://GitHub.com:443/acme/app.git/"),
        Optional.of("token-a")));
    // Another token, none, another repository, another path case or form: other mirrors.
    for (String other : List.of(MirrorCache.key(url, Optional.of("token-b")),
        MirrorCache.key(url, Optional.empty()),
        MirrorCache.key(URI.create("https://github.com/acme/app2.git"), Optional.of("token-a")),
        MirrorCache.key(URI.create("https://github.com/acme/App.git"), Optional.of("token-a")),
        MirrorCache.key(URI.create("https://github.com/acme/app"), Optional.of("token-a")),
        MirrorCache.key(URI.create("http://github.com/acme/app.git"), Optional.of("token-a")),
        MirrorCache.key(URI.create("https://github.com:8443/acme/app.git"),
            Optional.of("token-a")))) {
      assertNotEquals(key, other);
    }
    assertFalse(key.contains("token"));
  }

  @Test
  void eachPartHasItsDirectoryAndAnUnwritableRootIsRefused() throws Exception {
    MirrorCache cache = cache(1 << 20, Duration.ofSeconds(1));
    // Made by the cache: for the worker's user alone, as the workspaces are.
    MirrorCache made = new MirrorCache(new CacheSettings(true, dir.resolve("new"), 1,
        Duration.ZERO));
    assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(
        Files.getPosixFilePermissions(made.root())));
    for (String sub : List.of("mirrors", "locks", "tmp", "trash")) {
      assertTrue(Files.isDirectory(cache.root().resolve(sub)), sub);
    }
    Path file = Files.writeString(dir.resolve("a-file"), "x");
    assertThrows(java.io.IOException.class,
        () -> new MirrorCache(new CacheSettings(true, file.resolve("cache"), 1, Duration.ZERO)));
  }

  @Test
  void evictionRemovesTheLeastRecentlyUsedFirstAndNeverOneInUse() throws Exception {
    MirrorCache cache = cache(250 * 1024, Duration.ofSeconds(1));
    List<String> keys = List.of("1".repeat(64), "2".repeat(64), "3".repeat(64), "4".repeat(64));
    long now = System.currentTimeMillis();
    for (int i = 0; i < keys.size(); i++) {
      Path mirror = fakeMirror(cache, keys.get(i), 100 * 1024);
      Files.setLastModifiedTime(mirror.resolve(MirrorCache.USED),
          FileTime.fromMillis(now - (keys.size() - i) * 60_000L));
    }
    List<String> log = new CopyOnWriteArrayList<>();
    // The oldest is in use: it stays, the next oldest two go.
    try (MirrorLock held = cache.lock(keys.get(0), () -> false)) {
      assertNotNull(held);
      cache.evict(log::add);
    }

    assertTrue(Files.exists(cache.mirror(keys.get(0))), "evicted a mirror in use");
    assertFalse(Files.exists(cache.mirror(keys.get(1))));
    assertFalse(Files.exists(cache.mirror(keys.get(2))));
    assertTrue(Files.exists(cache.mirror(keys.get(3))));
    assertTrue(cache.totalSize() <= 250 * 1024, String.valueOf(cache.totalSize()));
    assertEquals(1, log.size(), log::toString);
    assertTrue(log.get(0).contains("removed 2 least recently used mirrors"), log.get(0));
    assertTrue(log.get(0).contains("1 in use kept"), log.get(0));
    try (var trash = Files.list(cache.root().resolve("trash"))) {
      assertEquals(0, trash.count());
    }
  }

  @Test
  void aLockHeldByAnotherProcessIsWaitedForAndTimesOut() throws Exception {
    MirrorCache cache = cache(1 << 20, Duration.ofMillis(300));
    String key = "5".repeat(64);
    Path lockFile = cache.lockFileOf(key);
    Process other = holdInAnotherProcess(lockFile);
    try {

      assertNull(MirrorLock.tryAcquire(lockFile), "taken while another process holds it");
      long start = System.nanoTime();
      assertNull(cache.lock(key, () -> false), "not given up after lock-timeout");
      long waited = (System.nanoTime() - start) / 1_000_000;
      assertTrue(waited >= 250 && waited < 2_000, waited + " ms");

      // Released by the other process: a waiting job gets it.
      AtomicReference<MirrorLock> got = new AtomicReference<>();
      MirrorCache patient = new MirrorCache(new CacheSettings(true, dir, 1 << 20,
          Duration.ofSeconds(20)));
      Thread waiter = new Thread(() -> {
        try {
          got.set(patient.lock(key, () -> false));
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      waiter.start();
      Thread.sleep(200);
      assertNull(got.get());
      other.getOutputStream().close();
      waiter.join(10_000);
      assertNotNull(got.get());
      got.get().close();
    } finally {
      other.destroyForcibly();
    }
  }

  /** {@link HoldLock} in a JVM of its own, once it holds {@code lockFile}. */
  private static Process holdInAnotherProcess(Path lockFile) throws Exception {
    Path classes = Path.of(HoldLock.class.getProtectionDomain().getCodeSource().getLocation()
        .toURI());
    Process other = new ProcessBuilder(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", classes.toString(), HoldLock.class.getName(), lockFile.toString())
        .redirectErrorStream(true).start();
    BufferedReader out = new BufferedReader(
        new InputStreamReader(other.getInputStream(), StandardCharsets.UTF_8));
    assertEquals("locked", out.readLine());
    return other;
  }

  @Test
  void aLockHeldByAProcessThatDiesIsFreeAtOnce() throws Exception {
    MirrorCache cache = cache(1 << 20, Duration.ofSeconds(20));
    String key = "6".repeat(64);
    Path lockFile = cache.lockFileOf(key);
    Process other = holdInAnotherProcess(lockFile);
    try {
      assertNull(MirrorLock.tryAcquire(lockFile), "taken while another process holds it");
      // Killed, as a worker that crashes holding a mirror: the OS drops its lock, no clean-up.
      other.destroyForcibly().waitFor();
      long start = System.nanoTime();
      try (MirrorLock lock = cache.lock(key, () -> false)) {
        assertNotNull(lock);
      }
      assertTrue((System.nanoTime() - start) / 1_000_000 < 1_000, "waited for a dead process");
    } finally {
      other.destroyForcibly();
    }
  }

  @Test
  void twoThreadsOfOneProcessNeverHoldAMirrorTogether() throws Exception {
    MirrorCache cache = cache(1 << 20, Duration.ofSeconds(10));
    MirrorCache second = new MirrorCache(new CacheSettings(true, dir, 1 << 20,
        Duration.ofSeconds(10)));
    String key = "6".repeat(64);
    int[] inside = {0};
    int[] most = {0};
    List<Throwable> failures = new CopyOnWriteArrayList<>();
    List<Thread> threads = new java.util.ArrayList<>();
    for (int t = 0; t < 4; t++) {
      MirrorCache which = t % 2 == 0 ? cache : second;
      Thread thread = new Thread(() -> {
        try {
          for (int i = 0; i < 25; i++) {
            try (MirrorLock lock = which.lock(key, () -> false)) {
              synchronized (inside) {
                inside[0]++;
                most[0] = Math.max(most[0], inside[0]);
              }
              Thread.sleep(1);
              synchronized (inside) {
                inside[0]--;
              }
            }
          }
        } catch (Throwable e) {
          failures.add(e);
        }
      });
      thread.start();
      threads.add(thread);
    }
    for (Thread thread : threads) {
      thread.join(30_000);
    }
    assertEquals(List.of(), failures);
    assertEquals(1, most[0]);
  }

  @Test
  void aWaitingJobStopsWhenCancelled() throws Exception {
    MirrorCache cache = cache(1 << 20, Duration.ofMinutes(5));
    String key = "7".repeat(64);
    boolean[] cancelled = {false};
    try (MirrorLock held = cache.lock(key, () -> false)) {
      AtomicReference<Throwable> outcome = new AtomicReference<>();
      Thread waiter = new Thread(() -> {
        try {
          cache.lock(key, () -> cancelled[0]);
        } catch (Throwable e) {
          outcome.set(e);
        }
      });
      waiter.start();
      Thread.sleep(200);
      long start = System.nanoTime();
      cancelled[0] = true;
      waiter.join(2_000);
      assertFalse(waiter.isAlive());
      assertTrue((System.nanoTime() - start) / 1_000_000 < 500);
      assertTrue(outcome.get() instanceof InterruptedException, String.valueOf(outcome.get()));
    }
  }

  @Test
  void onlyAWholeInstalledRepositoryIsAMirror() throws Exception {
    MirrorCache cache = cache(1 << 20, Duration.ofSeconds(1));
    String key = "8".repeat(64);
    Path temp = cache.newTemp(key);
    Git.init().setBare(true).setDirectory(temp.toFile()).call().close();
    assertFalse(MirrorCache.isMirror(temp), "not described yet");
    MirrorCache.describe(temp, "https://h/x.git", false);
    assertTrue(MirrorCache.isMirror(temp));
    cache.install(temp, key);
    assertTrue(MirrorCache.isMirror(cache.mirror(key)));
    assertFalse(Files.exists(temp));
    assertTrue(Files.readString(cache.mirror(key).resolve(MirrorCache.ABOUT))
        .contains("url https://h/x.git"));
  }

  private static Path fakeMirror(MirrorCache cache, String key, int bytes) throws Exception {
    Path mirror = cache.mirror(key);
    Git.init().setBare(true).setDirectory(mirror.toFile()).call().close();
    MirrorCache.describe(mirror, "https://h/" + key + ".git", false);
    Files.write(mirror.resolve("objects/pack/pack-" + "0".repeat(40) + ".pack"), new byte[bytes]);
    Files.createFile(mirror.resolve(MirrorCache.USED));
    return mirror;
  }
}

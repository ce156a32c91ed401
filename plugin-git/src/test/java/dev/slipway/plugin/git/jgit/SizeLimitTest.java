package dev.slipway.plugin.git.jgit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.plugin.git.CloneFailure;
import dev.slipway.plugin.git.CloneFailure.Reason;
import dev.slipway.plugin.git.jgit.SizeLimit.TooLargeException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The size limit's three checks on their own, without git: wire bytes, planned files, disk. */
class SizeLimitTest {
  private static final int MIB = 1024 * 1024;

  @TempDir Path checkout;

  @AfterEach
  void noWatcherIsLeft() {
    assertEquals(List.of(), watcherThreads());
  }

  @Test
  void theReadThatPassesTheLimitFailsAndSoDoEveryLaterOne() throws Exception {
    AtomicInteger aborted = new AtomicInteger();
    try (SizeLimit limit = new SizeLimit(MIB, checkout)) {
      limit.onExceeded(aborted::incrementAndGet);

      limit.received(MIB); // exactly at the limit is still allowed
      assertFalse(limit.exceeded());
      TooLargeException e = assertThrows(TooLargeException.class, () -> limit.received(1));
      assertThrows(TooLargeException.class, () -> limit.received(0));

      assertTrue(limit.exceeded());
      assertEquals("the server sent more than 1 MiB", e.getMessage());
      assertEquals(1, aborted.get(), "the abort action runs once");
      CloneFailure failure = limit.failure(e);
      assertEquals(Reason.TOO_LARGE, failure.reason());
      assertEquals("the server sent more than 1 MiB", failure.getMessage());
    }
  }

  @Test
  void aPlannedCheckoutCountsWhatIsAlreadyOnDisk() throws Exception {
    Files.write(checkout.resolve("pack"), new byte[MIB / 2]);
    try (SizeLimit limit = new SizeLimit(MIB, checkout)) {
      limit.checkPlanned(MIB / 2, "0123456789abcdef0123456789abcdef01234567");
      assertFalse(limit.exceeded(), "exactly at the limit is still allowed");

      TooLargeException e =
          assertThrows(
              TooLargeException.class,
              () -> limit.checkPlanned(MIB / 2 + 1, "0123456789abcdef0123456789abcdef01234567"));

      assertEquals(
          "the files of commit 0123456789ab take 512.0 KiB on top of 512 KiB already in the checkout",
          e.getMessage());
    }
  }

  @Test
  void theWatcherTripsSoonAfterTheCheckoutPassesTheLimit() throws Exception {
    AtomicInteger aborted = new AtomicInteger();
    long crossed;
    long tripped;
    try (SizeLimit limit = new SizeLimit(MIB, checkout)) {
      limit.onExceeded(aborted::incrementAndGet);
      limit.startWatching(SizeLimit.WATCH_INTERVAL);
      Path dir = Files.createDirectories(checkout.resolve("a/b"));
      try (OutputStream out = Files.newOutputStream(dir.resolve("grows.bin"))) {
        for (int i = 0; i < 8; i++) {
          out.write(new byte[MIB / 8]);
          out.flush();
          Thread.sleep(150);
          assertFalse(limit.exceeded(), "tripped at " + (i + 1) + "/8 MiB");
        }
        out.write(1);
        out.flush();
        crossed = System.nanoTime();
        long deadline = crossed + 2_000_000_000L;
        while (!limit.exceeded() && System.nanoTime() < deadline) {
          Thread.sleep(1);
        }
      }
      assertTrue(limit.exceeded(), "the watcher never saw the checkout pass the limit");
      tripped = limit.tripped().atNanos();
      assertEquals("the checkout grew past 1 MiB", limit.tripped().detail());
      // The flag is set first, then the abort runs on the watcher's thread.
      long abortDeadline = System.nanoTime() + 2_000_000_000L;
      while (aborted.get() == 0 && System.nanoTime() < abortDeadline) {
        Thread.sleep(1);
      }
      assertEquals(1, aborted.get());
      assertThrows(TooLargeException.class, limit::checkDisk);
    }
    long millis = (tripped - crossed) / 1_000_000;
    assertTrue(millis < 500, "the watcher took " + millis + " ms");
    System.out.println("the disk watcher saw the limit passed " + millis + " ms after it was");
  }

  @Test
  void closeStopsTheWatcherAndAFinalCheckStillCatchesWhatItMissed() throws Exception {
    SizeLimit limit = new SizeLimit(MIB, checkout);
    limit.startWatching(Duration.ofMinutes(1));
    assertEquals(1, watcherThreads().size());
    limit.close();
    assertEquals(List.of(), watcherThreads());

    Files.write(checkout.resolve("late.bin"), new byte[MIB + 1]);
    assertFalse(limit.exceeded());
    TooLargeException e = assertThrows(TooLargeException.class, limit::checkDisk);
    assertEquals("the checkout grew past 1 MiB", e.getMessage());
  }

  @Test
  void aMissingCheckoutIsEmptyAndSymlinksAreNotFollowed() throws Exception {
    try (SizeLimit missing = new SizeLimit(1, checkout.resolve("not-yet"))) {
      missing.checkDisk();
      assertEquals(0, missing.usage(Long.MAX_VALUE, false));
    }
    Path outside = Files.createDirectories(checkout.resolve("outside"));
    Files.write(outside.resolve("big.bin"), new byte[4096]);
    Path src = Files.createDirectories(checkout.resolve("src"));
    Files.createSymbolicLink(src.resolve("link"), outside);
    try (SizeLimit limit = new SizeLimit(1024, src)) {
      assertEquals(outside.toString().length(), limit.usage(Long.MAX_VALUE, false));
      limit.checkDisk();
    }
  }

  @Test
  void theLimitMustBePositive() {
    assertThrows(IllegalArgumentException.class, () -> new SizeLimit(0, checkout));
    assertNotNull(new SizeLimit(1, checkout));
  }

  static List<String> watcherThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(Thread::isAlive)
        .map(Thread::getName)
        .filter(n -> n.startsWith(SizeLimit.THREAD_PREFIX))
        .toList();
  }
}

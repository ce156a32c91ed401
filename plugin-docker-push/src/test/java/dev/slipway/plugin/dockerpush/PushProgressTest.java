package dev.slipway.plugin.dockerpush;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.JobLog;
import java.io.OutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class PushProgressTest {
  final List<String> lines = new ArrayList<>();
  final AtomicLong now = new AtomicLong();
  final JobLog log = new JobLog() {
    @Override
    public void line(String line) {
      lines.add(line);
    }

    @Override
    public OutputStream lineStream() {
      throw new UnsupportedOperationException();
    }
  };
  final PushProgress progress = new PushProgress(log, Duration.ofMillis(500), now::get);

  @Test
  void byteCountsAreWrittenAtMostOncePerInterval() {
    // Two layers, 2000 progress messages each over 2 seconds: 1 ms apart.
    for (int i = 1; i <= 2000; i++) {
      now.addAndGet(1_000_000);
      progress.accept(PushMessage.progress("aaaaaaaaaaaa", i * 500L, 1_000_000));
      progress.accept(PushMessage.progress("bbbbbbbbbbbb", i * 1000L, 2_000_000));
    }
    progress.flush();
    // A report at 0.5, 1.0, 1.5 and 2.0 s, each a line per layer that moved, and the last one.
    assertTrue(lines.size() >= 8 && lines.size() <= 10, lines.size() + " lines: " + lines);
    assertTrue(lines.get(0).startsWith("aaaaaaaaaaaa: Pushing ") || lines.get(0).startsWith("bbbbbbbbbbbb: Pushing "), lines.get(0));
    assertEquals("bbbbbbbbbbbb: Pushing 2.0 MB of 2.0 MB (100%)", lines.get(lines.size() - 1));
  }

  @Test
  void aLayersChangesOfStateAreWrittenAtOnceAndOnce() {
    progress.accept(PushMessage.status(null, "The push refers to repository [127.0.0.1:5000/team/app]"));
    progress.accept(PushMessage.status("aaaaaaaaaaaa", "Preparing"));
    progress.accept(PushMessage.status("aaaaaaaaaaaa", "Waiting"));
    progress.accept(PushMessage.status("aaaaaaaaaaaa", "Waiting"));
    progress.accept(PushMessage.status("bbbbbbbbbbbb", "Layer already exists"));
    progress.accept(PushMessage.progress("aaaaaaaaaaaa", 10, 20));
    progress.accept(PushMessage.progress("aaaaaaaaaaaa", 15, 20));
    progress.accept(PushMessage.status("aaaaaaaaaaaa", "Pushed"));
    progress.accept(PushMessage.status(null, "1: digest: sha256:" + "a".repeat(64) + " size: 527"));
    progress.accept(PushMessage.digest("sha256:" + "a".repeat(64)));
    progress.accept(PushMessage.error("never logged here", null));
    progress.flush();
    assertEquals(List.of(
        "The push refers to repository [127.0.0.1:5000/team/app]",
        "aaaaaaaaaaaa: Preparing",
        "aaaaaaaaaaaa: Waiting",
        "bbbbbbbbbbbb: Layer already exists",
        // Byte counts not yet written when the layer is done are dropped: "Pushed" says it all.
        "aaaaaaaaaaaa: Pushed",
        "1: digest: sha256:" + "a".repeat(64) + " size: 527"), lines);
  }

  @Test
  void onlyTheStartOfEachOfTheEnginesRetryCountdownsIsWritten() {
    for (int i = 5; i > 0; i--) {
      progress.accept(PushMessage.status("aaaaaaaaaaaa", "Retrying in " + i + " second" + (i == 1 ? "" : "s")));
    }
    for (int i = 10; i > 0; i--) {
      progress.accept(PushMessage.status("aaaaaaaaaaaa", "Retrying in " + i + " seconds"));
    }
    progress.accept(PushMessage.status("aaaaaaaaaaaa", "Pushed"));
    assertEquals(List.of("aaaaaaaaaaaa: Retrying in 5 seconds", "aaaaaaaaaaaa: Retrying in 10 seconds",
        "aaaaaaaaaaaa: Pushed"), lines);
  }

  @Test
  void bytesReadLikeDockers() {
    assertEquals("999 B", PushProgress.human(999));
    assertEquals("1.5 kB", PushProgress.human(1500));
    assertEquals("2.3 MB of 10.0 MB (23%)", PushProgress.bytes(2_300_000, 10_000_000));
    assertEquals("2.3 MB", PushProgress.bytes(2_300_000, 0));
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobLog;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Turns one push's messages into job log lines, per layer and throttled. A layer's change of state
 * ({@code Preparing}, {@code Pushed}, {@code Layer already exists}, {@code Mounted from ...}) is a
 * line at once, since each happens once per layer, and so is the start of each of the engine's own
 * retry countdowns ({@code Retrying in 5 seconds}; the ticks after it are not). Byte counts ({@code
 * Pushing}) are gathered and written at most once per interval, one line per layer that moved.
 * Errors and digests are the stage's business, not logged here.
 *
 * <p>Called from docker-java's streaming thread and, for the last {@link #flush}, from the stage's:
 * hence synchronized.
 */
final class PushProgress {
  private final JobLog log;
  private final long intervalNanos;
  private final LongSupplier nanoTime;
  /** Layer id to its last state line. */
  private final Map<String, String> states = new LinkedHashMap<>();
  /** Layer id to a progress line not yet written. */
  private final Map<String, String> pending = new LinkedHashMap<>();
  /** Layer id to the seconds of the engine's last retry countdown message. */
  private final Map<String, Integer> countdowns = new LinkedHashMap<>();
  private long lastFlush;

  PushProgress(JobLog log, Duration interval, LongSupplier nanoTime) {
    this.log = log;
    this.intervalNanos = interval.toNanos();
    this.nanoTime = nanoTime;
    this.lastFlush = nanoTime.getAsLong();
  }

  synchronized void accept(PushMessage message) {
    if (message.isError() || message.digest().isPresent()) {
      return;
    }
    String status = message.status().strip();
    if (message.layer().isEmpty() || message.layer().get().isBlank()) {
      if (!status.isEmpty()) {
        log.line(status);
      }
      return;
    }
    String layer = message.layer().get();
    if (message.status().equals("Pushing")) {
      pending.put(layer, layer + ": Pushing " + bytes(message.current(), message.total()));
      maybeFlush();
    } else if (status.startsWith("Retrying in")) {
      // The engine counts down once a second; only the start of each countdown is news.
      int seconds = leadingNumber(status.substring("Retrying in".length()).strip());
      Integer before = countdowns.put(layer, seconds);
      if (before == null || seconds > before) {
        pending.remove(layer);
        log.line(layer + ": " + status);
      }
    } else if (!status.equals(states.get(layer))) {
      states.put(layer, status);
      countdowns.remove(layer);
      // A layer that finished needs no stale byte count written after it.
      pending.remove(layer);
      log.line(layer + ": " + status);
    }
  }

  /** Writes the progress lines not yet written. */
  synchronized void flush() {
    pending.values().forEach(log::line);
    pending.clear();
    lastFlush = nanoTime.getAsLong();
  }

  private void maybeFlush() {
    long now = nanoTime.getAsLong();
    if (now - lastFlush >= intervalNanos) {
      flush();
    }
  }

  private static int leadingNumber(String text) {
    int end = 0;
    while (end < text.length() && Character.isDigit(text.charAt(end))) {
      end++;
    }
    return end == 0 || end > 9 ? 0 : Integer.parseInt(text.substring(0, end));
  }

  /** {@code 1.2 MB of 3.4 MB (35%)}, or {@code 1.2 MB} when the total is unknown. */
  static String bytes(long current, long total) {
    if (total <= 0) {
      return human(current);
    }
    long percent = Math.min(100, current * 100 / total);
    return human(current) + " of " + human(total) + " (" + percent + "%)";
  }

  static String human(long bytes) {
    if (bytes < 1000) {
      return bytes + " B";
    }
    String[] units = {"kB", "MB", "GB", "TB"};
    double value = bytes;
    int unit = -1;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
  }
}

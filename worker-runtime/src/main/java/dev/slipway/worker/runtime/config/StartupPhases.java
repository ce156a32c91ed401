package dev.slipway.worker.runtime.config;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * How long each phase of start-up took: {@code bin/worker serve} logs them in one line at debug
 * once it serves ({@code scripts/bench-startup.sh --phases} prints that line), so that a slower
 * start can be traced to its phase without a profiler. Costs a {@link System#nanoTime} per mark.
 */
public final class StartupPhases {
  private final long origin = System.nanoTime();
  private final List<String> phases = new ArrayList<>();
  private long last = origin;

  /** Ends the phase that ran since the previous mark, or since this object was made. */
  public synchronized void mark(String phase) {
    long now = System.nanoTime();
    phases.add(phase + " " + TimeUnit.NANOSECONDS.toMillis(now - last));
    last = now;
  }

  /** Records a phase that {@code nanos} measured, without ending the current one. */
  public synchronized void record(String phase, long nanos) {
    phases.add(phase + " " + TimeUnit.NANOSECONDS.toMillis(nanos));
  }

  /**
   * The phases in ms, in the order they were marked, then the time from the JVM's start to now:
   * {@code jvm 180, log-init 40, ..., since launch 900 (ms)}. "jvm" is the JVM's start to the
   * creation of this object: the JVM's own start, the boot layer and the main class.
   */
  public synchronized String summary() {
    long now = System.nanoTime();
    // Read only for this line: java.management is no part of a start-up that does not log it.
    long uptime = ManagementFactory.getRuntimeMXBean().getUptime();
    long sinceOrigin = TimeUnit.NANOSECONDS.toMillis(now - origin);
    return "jvm " + Math.max(0, uptime - sinceOrigin) + ", " + String.join(", ", phases)
        + ", since launch " + uptime + " (ms)";
  }
}

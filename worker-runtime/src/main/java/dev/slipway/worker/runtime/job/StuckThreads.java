package dev.slipway.worker.runtime.job;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Threads a job left behind: a stage that did not return after its job was stopped and its
 * processes were killed, or a cleanup that ran past its time limit. The job was reported and its
 * slot released without them; they are counted here until they return, and a worker with one
 * stuck for longer than {@code worker.stuck-stage-limit} reports itself unhealthy, so that a
 * liveness probe restarts it.
 */
public final class StuckThreads {
  private static final Logger LOG = LoggerFactory.getLogger(StuckThreads.class);

  /** One abandoned thread. */
  record Entry(String jobId, String what, long sinceNanos) {}

  private final Map<Thread, Entry> stuck = new ConcurrentHashMap<>();

  void add(Thread thread, String jobId, String what) {
    stuck.put(thread, new Entry(jobId, what, System.nanoTime()));
    LOG.error("job {}: {} did not return; the thread {} is abandoned ({} stuck now)", jobId,
        what, thread.getName(), stuck.size());
  }

  void remove(Thread thread) {
    Entry entry = stuck.remove(thread);
    if (entry != null) {
      LOG.warn("job {}: {} returned at last, {} after it was abandoned", entry.jobId(),
          entry.what(), Duration.ofNanos(System.nanoTime() - entry.sinceNanos()));
    }
  }

  /** How many abandoned threads have not returned yet. */
  public int count() {
    return stuck.size();
  }

  /** How long the oldest abandoned thread has been stuck, if any is. */
  public Optional<Duration> longest() {
    long now = System.nanoTime();
    return stuck.values().stream().map(e -> Duration.ofNanos(now - e.sinceNanos()))
        .max(Duration::compareTo);
  }
}

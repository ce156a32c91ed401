package dev.slipway.worker.runtime.grpc;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The journals of running jobs and of finished ones, which are kept for
 * {@code worker.jobs.retention} (at most {@code worker.jobs.retained} of them, and at most
 * {@code worker.jobs.retained-bytes} of their events; past that, the oldest lose their events
 * and keep their result) so that a caller can come back for a job's outcome.
 */
final class JobJournals {
  /** A journal and who may read it. */
  record Entry(String jobId, String owner, JobJournal journal, long[] finishedAt) {
    boolean finished() {
      return finishedAt[0] != 0;
    }
  }

  /**
   * @param eventsPerJob events kept per job
   * @param bytesPerJob bytes of events kept per job
   * @param retention how long finished jobs are kept
   * @param retained how many finished jobs are kept at most
   * @param retainedBytes how many bytes of finished jobs' events are kept at most
   */
  record Limits(int eventsPerJob, long bytesPerJob, Duration retention, int retained,
      long retainedBytes) {}

  private final Limits limits;
  private final Map<String, Entry> entries = new LinkedHashMap<>();

  JobJournals(Limits limits) {
    this.limits = limits;
  }

  JobJournal newJournal() {
    return new JobJournal(limits.eventsPerJob(), limits.bytesPerJob());
  }

  /** Files a started job's journal; a finished job of the same id before it is forgotten. */
  synchronized void add(String jobId, String owner, JobJournal journal) {
    prune();
    entries.remove(jobId);
    entries.put(jobId, new Entry(jobId, owner, journal, new long[1]));
  }

  /** Marks a job finished, from when its retention counts. */
  synchronized void finished(String jobId, JobJournal journal) {
    Entry entry = entries.get(jobId);
    if (entry != null && entry.journal() == journal) {
      entry.finishedAt()[0] = System.nanoTime();
    }
    prune();
  }

  synchronized Optional<Entry> find(String jobId) {
    prune();
    return Optional.ofNullable(entries.get(jobId));
  }

  /** Forgets finished jobs past their retention or the count, and trims events past the bytes. */
  private void prune() {
    long now = System.nanoTime();
    entries.values().removeIf(e -> e.finished()
        && now - e.finishedAt()[0] > limits.retention().toNanos());
    List<Entry> finished = new ArrayList<>();
    for (Entry e : entries.values()) {
      if (e.finished()) {
        finished.add(e);
      }
    }
    finished.sort(Comparator.comparingLong(e -> e.finishedAt()[0]));
    int over = finished.size() - limits.retained();
    for (int i = 0; i < over; i++) {
      entries.remove(finished.get(i).jobId());
    }
    long bytes = 0;
    for (int i = finished.size() - 1; i >= Math.max(0, over); i--) {
      JobJournal journal = finished.get(i).journal();
      bytes += journal.bufferedBytes();
      if (bytes > limits.retainedBytes()) {
        journal.trim();
      }
    }
  }
}

package dev.slipway.plugin.dockerpush;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One job's changes to the engine's names, and the locks it holds on them: kept in the job's
 * context (a private key of the stage), because {@code cleanup} finishes what {@code execute}
 * could not. Written by the job's own thread and read by its cleanup, hence synchronized.
 */
final class LocalNames {
  /**
   * A destination name this job pointed at its image, not yet settled: given back (or removed),
   * or kept as the job asked.
   *
   * @param target the name
   * @param held where the image that had the name waits meanwhile; empty when none had it
   */
  record Borrowed(ImageName.Target target, Optional<ImageName.Target> held) {}

  private final boolean keep;
  private final Map<String, LocalNameLocks.Held> locks = new LinkedHashMap<>();
  private final List<Borrowed> pending = new ArrayList<>();
  private boolean pushed;

  /** @param keep whether the job asked to keep its pushed names ({@code remove-local-tags=false}) */
  LocalNames(boolean keep) {
    this.keep = keep;
  }

  /** Whether the job asked to keep its pushed names. */
  boolean keepAsked() {
    return keep;
  }

  /** Whether the names stay on the job's image: the job asked for it and its push succeeded. */
  synchronized boolean keeping() {
    return keep && pushed;
  }

  /** Every tag was pushed and confirmed: the names are kept now, if the job asked for it. */
  synchronized void pushed() {
    pushed = true;
  }

  synchronized void locked(LocalNameLocks.Held lock, String reference) {
    locks.put(reference, lock);
  }

  synchronized void tagged(Borrowed borrowed) {
    pending.add(borrowed);
  }

  /** The names not settled yet, oldest first. */
  synchronized List<Borrowed> pending() {
    return List.copyOf(pending);
  }

  synchronized void settled(Borrowed borrowed) {
    pending.remove(borrowed);
  }

  /**
   * Releases the lock of every name that is settled or was never tagged; a name still to be
   * settled stays locked until {@code cleanup}: a job that took it now would take this job's image
   * for the name's owner and "give it back".
   */
  synchronized void releaseSettled() {
    var it = locks.entrySet().iterator();
    while (it.hasNext()) {
      var entry = it.next();
      if (pending.stream().noneMatch(b -> b.target().reference().equals(entry.getKey()))) {
        entry.getValue().release();
        it.remove();
      }
    }
  }

  /** Releases every lock, settled or not: the job is over. */
  synchronized void releaseAll() {
    locks.values().forEach(LocalNameLocks.Held::release);
    locks.clear();
  }
}

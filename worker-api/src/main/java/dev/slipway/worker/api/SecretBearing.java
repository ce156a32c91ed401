package dev.slipway.worker.api;

import java.util.Collection;

/**
 * A published value that holds secrets. The runtime masks them in the job's log and events as
 * soon as the value is {@linkplain JobContext#publish published}.
 */
public interface SecretBearing {
  /** The secrets this value holds. */
  Collection<Secret> secrets();
}

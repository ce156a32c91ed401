package dev.slipway.plugin.git;

/** What a running clone reports to, and asks, the job it runs for. */
public interface CloneListener {

  /**
   * A step of the clone advanced. Called for every object, so it must be cheap.
   *
   * @param task what is being done, e.g. {@code Receiving objects}
   * @param done units done so far in this task
   * @param total units the task will take; 0 when unknown
   */
  void progress(String task, long done, long total);

  /** A line for the job's log: a step of the clone worth telling, such as a fallback taken. */
  default void log(String line) {}

  /** Whether the clone must stop as soon as it can. */
  boolean isCancelled();

  /**
   * Registers {@code abort} to run, on another thread, when the job is cancelled: it must unblock
   * network reads that no cancellation flag reaches.
   */
  void onCancel(Runnable abort);

  /**
   * Notes, before it is made, something the clone is about to leave outside the job's workspace
   * (a mirror being built), so that a worker started after a crash can remove it.
   *
   * @param what one line, no secret
   * @return false when it could not be noted: the clone must not make the thing then
   */
  default boolean recordLeftover(String what) {
    return true;
  }
}

package dev.slipway.worker.api;

import java.util.List;

/**
 * One step of a job's pipeline, created once by its {@link StageFactory} and reused for every job.
 * Implementations must be safe to call from more than one job thread when the worker is configured
 * to run jobs concurrently; keep per-job state in local variables or the {@link JobContext}.
 */
public interface Stage extends AutoCloseable {

  /**
   * Checks the job's request before the job gets a workspace or makes any network call. Throw a
   * {@link StageException} of kind {@link ErrorKind#INVALID_REQUEST} to refuse the job; the caller
   * then gets {@code INVALID_ARGUMENT} with the exception's message.
   *
   * @param request the job's request, with defaults applied
   */
  default void validate(JobRequestView request) throws StageException {}

  /**
   * Checks the job's request together with the options the job set for this stage (already
   * checked against their declarations); what the runtime calls. By default {@link
   * #validate(JobRequestView)}.
   *
   * @since 0.3
   */
  default void validate(JobRequestView request, StageOptions options) throws StageException {
    validate(request);
  }

  /**
   * Where this stage will push the job's image, if it pushes at all: the runtime checks each
   * target against the caller's allowed push repositories before the job starts. Called after
   * {@link #validate} accepted the request. A stage that pushes must list every target here.
   *
   * @param request the job's request, with defaults applied
   */
  default List<PushTarget> pushTargets(JobRequestView request) throws StageException {
    return List.of();
  }

  /**
   * Runs the stage for one job. Return normally on success; throw a {@link StageException} with a
   * stable code on failure. The runtime interrupts the calling thread when the job is cancelled or
   * times out: blocking calls should let the {@link InterruptedException} through, and long work
   * should poll {@link JobContext#isCancelled()} or register a {@link JobContext#onCancel} action.
   *
   * @param context the job's context: request, workspace, outputs of earlier stages, log
   */
  void execute(JobContext context) throws StageException, InterruptedException;

  /**
   * Called after the job has ended, however it ended, for every stage whose {@link #execute} was
   * called, in reverse pipeline order and before the workspace is deleted. Release what the job
   * left outside its workspace here (local image tags, for example). Must not throw for a job that
   * failed half-way.
   *
   * @param context the job's context; {@link JobContext#isCancelled()} tells if it was cancelled
   */
  default void cleanup(JobContext context) {}

  /**
   * Removes what this stage left outside the workspace in one job of a worker that died before
   * that job's {@link #cleanup} could run (a crash, SIGKILL, a lost machine): called at start-up,
   * before the worker serves or registers, with what the stage {@linkplain
   * JobContext#recordLeftover recorded} in that job, in the order recorded, after the runtime has
   * killed the job's leftover processes. Records are notes made <em>before</em> each thing was
   * made: the thing may never have been made, may be gone already, or (a name) may belong to
   * someone else by now; check before removing, and never remove what is not this job's.
   *
   * <p>Say what was removed, one line each, in {@code log} (the worker's log, with the job's id
   * and the stage's). Time is bounded by {@code worker.cleanup-timeout}; the worker starts
   * however this ends. Throw when something could not be removed and is worth another try at
   * the next start (the engine is not up yet): the runtime then keeps these records for it.
   *
   * @param recorded the stage's records of one dead job, oldest first
   * @param log where to say what was removed or left
   */
  default void removeLeftovers(List<String> recorded, JobLog log) {}

  /** Releases what the stage holds for the worker's lifetime (clients, connection pools). */
  @Override
  default void close() {}
}

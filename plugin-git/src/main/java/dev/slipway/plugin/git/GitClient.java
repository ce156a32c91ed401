package dev.slipway.plugin.git;

import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/**
 * The git operation the stage needs, as small as jib's {@code DockerClient}, and the clean-up of
 * what it keeps outside workspaces (the mirror cache): it keeps JGit's types inside {@code
 * dev.slipway.plugin.git.jgit} and lets the stage be tested with a fake.
 */
public interface GitClient {

  /**
   * Clones one branch of a repository and reports the commit checked out. Mirrors {@code git
   * clone --single-branch --branch B [--depth N] [--recurse-submodules] URL DIR} followed by
   * {@code git rev-parse HEAD}, where an empty branch means the remote's default branch.
   *
   * <p>With {@link CloneSpec#ref()} or {@link CloneSpec#commitSha()} set, mirrors {@code git init;
   * git fetch [--depth N] origin REF_OR_SHA; git checkout --detach FETCH_HEAD} instead: only that
   * ref is fetched, or the commit by its id (falling back to searching the history of the branch
   * or ref when the server will not send it by id), and HEAD is detached at exactly that commit.
   *
   * @param spec what to clone, where to, and how
   * @param listener receives progress and tells when to stop
   * @return the commit checked out and the branch it is on
   * @throws CloneFailure when the clone cannot be done; its reason decides the error code
   * @throws InterruptedException when the listener said to stop; nothing keeps running then
   */
  CloneResult cloneRepository(CloneSpec spec, CloneListener listener)
      throws CloneFailure, InterruptedException;

  /**
   * Removes what a clone of a worker that died left outside the workspace, from the records it
   * made with {@link CloneListener#recordLeftover}; records of another kind are ignored.
   *
   * @param records the records of one dead job, oldest first
   * @param log says what was removed
   */
  default void removeLeftovers(List<String> records, Consumer<String> log) {}

  /**
   * Takes a job's checkout out of its workspace, when the job is over, to be deleted in the
   * background: deleting a work tree of thousands of files takes as long as writing it, and the
   * runtime would do it before it answers the job. Leaves it where it is when it cannot.
   */
  default void discardCheckout(Path checkout) {}

  /**
   * Waits until the work the client does between jobs (repacks, ready checkouts) that was queued
   * so far is done, the ready checkouts still waiting for their job's end included (they start
   * now); for benchmarks and tests, which measure the next job.
   */
  default void awaitMaintenance() throws InterruptedException {}

  /** Releases what the client holds for the worker's lifetime (a maintenance thread). */
  default void close() {}
}

package dev.slipway.plugin.git;

/**
 * The one git operation the stage needs, as small as jib's {@code DockerClient}: it keeps JGit's
 * types inside {@code dev.slipway.plugin.git.jgit} and lets the stage be tested with a fake.
 */
public interface GitClient {

  /**
   * Clones one branch of a repository and reports the commit checked out. Mirrors {@code git
   * clone --single-branch --branch B [--depth N] [--recurse-submodules] URL DIR} followed by
   * {@code git rev-parse HEAD}, where an empty branch means the remote's default branch.
   *
   * @param spec what to clone, where to, and how
   * @param listener receives progress and tells when to stop
   * @return the commit checked out and the branch it is on
   * @throws CloneFailure when the clone cannot be done; its reason decides the error code
   * @throws InterruptedException when the listener said to stop; nothing keeps running then
   */
  CloneResult cloneRepository(CloneSpec spec, CloneListener listener)
      throws CloneFailure, InterruptedException;
}

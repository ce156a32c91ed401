package dev.slipway.plugin.git;

import java.util.Objects;

/**
 * What a clone checked out.
 *
 * @param commitSha the full sha of HEAD, 40 lower-case hex digits
 * @param checkedOut what was checked out, for the log: the branch's name (the remote's default
 *     one when none was asked for), or, for a detached HEAD, a phrase naming the ref or commit and
 *     how it was fetched
 * @param commitTime when the commit was made (its committer time), when known
 */
public record CloneResult(String commitSha, String checkedOut,
    java.util.Optional<java.time.Instant> commitTime) {
  public CloneResult {
    Objects.requireNonNull(commitSha, "commitSha");
    Objects.requireNonNull(checkedOut, "checkedOut");
    Objects.requireNonNull(commitTime, "commitTime");
  }

  /** A result without the commit's time. */
  public CloneResult(String commitSha, String checkedOut) {
    this(commitSha, checkedOut, java.util.Optional.empty());
  }
}

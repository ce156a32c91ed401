package dev.slipway.plugin.git;

import java.util.Objects;

/**
 * What a clone checked out.
 *
 * @param commitSha the full sha of HEAD
 * @param branch the branch checked out, the remote's default one when none was asked for
 */
public record CloneResult(String commitSha, String branch) {
  public CloneResult {
    Objects.requireNonNull(commitSha, "commitSha");
    Objects.requireNonNull(branch, "branch");
  }
}

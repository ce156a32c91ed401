package dev.slipway.plugin.git;

import java.util.Objects;

/**
 * Why a clone failed, in terms the stage maps to stable error codes. The message is a phrase
 * about the failure for people; it never holds a secret.
 */
public final class CloneFailure extends Exception {
  private static final long serialVersionUID = 1L;

  /** The kinds of failure that callers can act on differently. */
  public enum Reason {
    /** The server wants credentials and the job has no token (HTTP 401). */
    CREDENTIALS_MISSING,
    /** The server refused the token (HTTP 401). */
    CREDENTIALS_REFUSED,
    /** The server forbids access (HTTP 403). */
    FORBIDDEN,
    /** No repository at the URL (HTTP 404). */
    REPOSITORY_NOT_FOUND,
    /** The branch or ref asked for, or a default branch, does not exist. */
    BRANCH_NOT_FOUND,
    /**
     * The exact commit asked for could not be had: the server would not send it by id, and it is
     * not in the history of the branch or ref searched (or that does not exist); or the id names
     * an object that is not a commit. The message says where it looked.
     */
    COMMIT_NOT_FOUND,
    /** The server cannot be reached: refused, unknown host, timed out. */
    UNREACHABLE,
    /** A submodule's URL breaks the URL rules, or the job's caller may not clone it. */
    SUBMODULE_REFUSED,
    /**
     * The server redirected the clone to another repository path on the same host: not the
     * repository that was checked. The message names both paths.
     */
    REDIRECTED_ELSEWHERE,
    /**
     * The clone would pass {@link CloneSpec#maxCheckoutSize()}; the message says what passed it
     * (the bytes received, the files to check out, the checkout on disk) and by how much.
     */
    TOO_LARGE,
    /** Anything else. */
    FAILED
  }

  private final Reason reason;

  public CloneFailure(Reason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = Objects.requireNonNull(reason, "reason");
  }

  public Reason reason() {
    return reason;
  }
}

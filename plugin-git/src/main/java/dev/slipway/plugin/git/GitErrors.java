package dev.slipway.plugin.git;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.ErrorKind;

/**
 * Every error code the git stage fails with. The codes, their kinds and whether they are
 * retryable are published behaviour: orchestrators act on them, so they keep their meaning.
 */
public enum GitErrors implements ErrorCode {
  AUTH_FAILED("git.auth-failed", ErrorKind.INVALID_REQUEST, false,
      "the server wants credentials, refused the job's token (401) or denied it access (403);"
          + " pass a token that can read the repository"),
  REPO_NOT_FOUND("git.repo-not-found", ErrorKind.INVALID_REQUEST, false,
      "no repository at repo_url (404); a private one looks missing to a token that cannot read"
          + " it"),
  BRANCH_NOT_FOUND("git.branch-not-found", ErrorKind.INVALID_REQUEST, false,
      "the branch or ref does not exist, or the repository has no default branch"),
  UNREACHABLE("git.unreachable", ErrorKind.EXTERNAL, true,
      "the git server cannot be reached or stayed silent past connect-timeout; may succeed"
          + " later"),
  INVALID_REQUEST("git.invalid-request", ErrorKind.INVALID_REQUEST, false,
      "repo_url, branch, ref or commit_sha break the URL or ref rules, or the server redirected"
          + " to another repository path"),
  SUBMODULE_REFUSED("git.submodule-refused", ErrorKind.INVALID_REQUEST, false,
      "a submodule's URL breaks the URL rules or the caller may not clone it"),
  CLONE_FAILED("git.clone-failed", ErrorKind.EXTERNAL, true,
      "the clone failed otherwise (a broken connection, a redirect to another host); may"
          + " succeed later"),
  REPO_TOO_LARGE("git.repo-too-large", ErrorKind.INVALID_REQUEST, false,
      "the clone would pass max-checkout-size; the same request fails the same way on retry"),
  COMMIT_NOT_FOUND("git.commit-not-found", ErrorKind.INVALID_REQUEST, false,
      "commit_sha cannot be had from the repository, or the ref names no commit");

  private final String code;
  private final ErrorKind kind;
  private final boolean retryable;
  private final String description;

  GitErrors(String code, ErrorKind kind, boolean retryable, String description) {
    this.code = code;
    this.kind = kind;
    this.retryable = retryable;
    this.description = description;
  }

  @Override
  public String code() {
    return code;
  }

  @Override
  public ErrorKind kind() {
    return kind;
  }

  /** Whether a failure with this code may pass when the same request is sent again. */
  public boolean retryable() {
    return retryable;
  }

  @Override
  public String description() {
    return description;
  }
}

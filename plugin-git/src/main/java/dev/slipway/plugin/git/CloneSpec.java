package dev.slipway.plugin.git;

import dev.slipway.worker.api.Secret;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * What {@link GitClient#cloneRepository} clones.
 *
 * @param url the repository, already checked by {@code urlPolicy}, without credentials
 * @param branch the branch, already checked; empty for the remote's default branch (or when
 *     {@code ref} is set)
 * @param ref a full ref name, already checked ({@code refs/tags/v1}, {@code refs/pull/42/merge}),
 *     fetched alone and checked out as a detached HEAD; empty for {@code branch}
 * @param commitSha the exact commit to check out, 40 lower-case hex digits, as a detached HEAD;
 *     {@code ref} or {@code branch} (else the default branch) is then where to look for it when
 *     the server will not send it by id. Empty for the tip of {@code ref} or {@code branch}
 * @param token sent as HTTP basic credentials to {@code url}'s own scheme, host and port only
 * @param directory the checkout's root; must not exist or be empty
 * @param depth commits of history to fetch; 0 for all
 * @param submodules whether to clone submodules too
 * @param timeout connect timeout of each request, and longest wait between two reads
 * @param urlPolicy the rules every submodule URL must pass as well
 * @param maxCheckoutSize most bytes the clone may receive from servers, and most it may write
 *     under {@code directory}, {@code .git} and submodules included; more than 0
 * @param repositoryCheck why the job's caller may not clone a submodule's URL (given as it would
 *     be fetched, relative URLs resolved, after {@code urlPolicy} passed it), or empty when it may:
 *     the runtime's {@code JobContext.repositoryRefusal}, asked before each submodule is fetched
 * @param useCache whether this clone may go through the client's mirror cache, if it has one
 */
public record CloneSpec(
    URI url,
    String branch,
    String ref,
    String commitSha,
    Optional<Secret> token,
    Path directory,
    int depth,
    boolean submodules,
    Duration timeout,
    UrlPolicy urlPolicy,
    long maxCheckoutSize,
    Function<String, Optional<String>> repositoryCheck,
    boolean useCache) {

  public CloneSpec {
    Objects.requireNonNull(url, "url");
    Objects.requireNonNull(branch, "branch");
    Objects.requireNonNull(ref, "ref");
    Objects.requireNonNull(commitSha, "commitSha");
    if (!branch.isEmpty() && !ref.isEmpty()) {
      throw new IllegalArgumentException("branch and ref are exclusive");
    }
    if (!commitSha.isEmpty() && !commitSha.matches("[0-9a-f]{40}")) {
      throw new IllegalArgumentException("commitSha must be 40 lower-case hex digits");
    }
    Objects.requireNonNull(token, "token");
    Objects.requireNonNull(directory, "directory");
    Objects.requireNonNull(timeout, "timeout");
    Objects.requireNonNull(urlPolicy, "urlPolicy");
    Objects.requireNonNull(repositoryCheck, "repositoryCheck");
    if (maxCheckoutSize <= 0) {
      throw new IllegalArgumentException("maxCheckoutSize must be more than 0: " + maxCheckoutSize);
    }
  }

  /** A clone of the tip of {@code branch}, no ref or exact commit. */
  public CloneSpec(
      URI url,
      String branch,
      Optional<Secret> token,
      Path directory,
      int depth,
      boolean submodules,
      Duration timeout,
      UrlPolicy urlPolicy,
      long maxCheckoutSize,
      Function<String, Optional<String>> repositoryCheck) {
    this(url, branch, "", "", token, directory, depth, submodules, timeout, urlPolicy,
        maxCheckoutSize, repositoryCheck, true);
  }

  /** Whether the checkout is a detached HEAD at a ref's tip or an exact commit. */
  public boolean exact() {
    return !ref.isEmpty() || !commitSha.isEmpty();
  }
}

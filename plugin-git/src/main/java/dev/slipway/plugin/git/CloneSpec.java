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
 * @param branch the branch, already checked; empty for the remote's default branch
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
 */
public record CloneSpec(
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

  public CloneSpec {
    Objects.requireNonNull(url, "url");
    Objects.requireNonNull(branch, "branch");
    Objects.requireNonNull(token, "token");
    Objects.requireNonNull(directory, "directory");
    Objects.requireNonNull(timeout, "timeout");
    Objects.requireNonNull(urlPolicy, "urlPolicy");
    Objects.requireNonNull(repositoryCheck, "repositoryCheck");
    if (maxCheckoutSize <= 0) {
      throw new IllegalArgumentException("maxCheckoutSize must be more than 0: " + maxCheckoutSize);
    }
  }
}

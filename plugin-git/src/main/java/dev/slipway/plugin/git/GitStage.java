package dev.slipway.plugin.git;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.StageOptions;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The {@code git} stage: clones {@code repo_url} at {@code branch}, at {@code ref} or at exactly
 * {@code commit_sha} into {@code <workspace>/src} and publishes {@link StageKeys#SOURCE_DIR} and
 * {@link StageKeys#COMMIT_SHA}. Holds no per-job state, so one instance serves concurrent jobs.
 */
final class GitStage implements Stage {
  /** The checkout's folder inside the job's workspace. */
  static final String CHECKOUT_DIR = "src";

  /** Real tokens are 40 characters and more. */
  private static final int MIN_MASKED_TOKEN = 8;

  private final GitSettings settings;
  private final UrlPolicy urls;
  private final GitClient client;

  GitStage(GitSettings settings, GitClient client) {
    this.settings = settings;
    this.urls = new UrlPolicy(settings.allowedSchemes());
    this.client = client;
  }

  /** Refuses a request that could hurt the worker, before any network or disk work. */
  @Override
  public void validate(JobRequestView request) throws StageException {
    validate(request, StageOptions.none());
  }

  /**
   * Also checks the job's options against their declarations: the runtime has done so already,
   * but a value out of range must not reach JGit whoever calls.
   */
  @Override
  public void validate(JobRequestView request, StageOptions options) throws StageException {
    List<String> problems = new ArrayList<>();
    for (StageOption option : GitStageFactory.OPTIONS) {
      options.string(option.name()).flatMap(option::refusal)
          .ifPresent(p -> problems.add("stage_options git." + option.name() + ": " + p));
    }
    urls.problem(request.repoUrl()).ifPresent(p -> problems.add("repo_url: " + p));
    BranchNames.problem(request.branch()).ifPresent(p -> problems.add("branch: " + p));
    BranchNames.refProblem(request.ref()).ifPresent(p -> problems.add("ref: " + p));
    // The runtime checks these two as well; here so that no caller can reach the clone without.
    if (!request.commitSha().isEmpty() && !request.commitSha().matches("[0-9a-fA-F]{40}")) {
      problems.add(
          "commit_sha: must be a full commit id, 40 hex digits, or empty for the tip of the branch"
              + " or ref");
    }
    if (!request.branch().isEmpty() && !request.ref().isEmpty()) {
      problems.add(
          "branch and ref: give one of them, not both (refs/heads/<branch> names a branch as a"
              + " ref)");
    }
    if (!problems.isEmpty()) {
      throw new StageException(GitErrors.INVALID_REQUEST, String.join("; ", problems));
    }
  }

  @Override
  public void execute(JobContext context) throws StageException, InterruptedException {
    JobRequestView request = context.request();
    // Again here, so that no caller can reach the clone with a request validate() would refuse.
    validate(request, context.options());
    // A job's options win over the configuration; absent, the configuration holds.
    int depth = context.options().integer(GitStageFactory.DEPTH.name()).map(Long::intValue)
        .orElse(settings.depth());
    boolean submodules = context.options().bool(GitStageFactory.SUBMODULES.name())
        .orElse(settings.submodules());
    if (context.isCancelled()) {
      throw new InterruptedException("the job was cancelled before the clone started");
    }
    URI url = urls.normalize(request.repoUrl());
    Optional<Secret> token = request.token().filter(t -> !t.isBlank());
    Path checkout = context.workspace().resolve(CHECKOUT_DIR);
    String commitSha = request.commitSha().toLowerCase(Locale.ROOT);
    CloneSpec spec =
        new CloneSpec(
            url,
            request.branch(),
            request.ref(),
            commitSha,
            token,
            checkout,
            depth,
            submodules,
            settings.connectTimeout(),
            urls,
            settings.maxCheckoutSize(),
            // Submodules lead to more repositories; the caller's allow-list holds for them too.
            context::repositoryRefusal,
            // A job may keep its clone off the cache; it cannot turn on one that is off.
            context.options().bool(GitStageFactory.CACHE.name()).orElse(true));
    context
        .log()
        .line(
            "cloning "
                + url
                + (commitSha.isEmpty() ? "" : " at commit " + commitSha)
                + (!request.ref().isEmpty()
                    ? " (ref " + request.ref() + ")"
                    : request.branch().isEmpty()
                        ? " (default branch)"
                        : " (branch " + request.branch() + ")")
                + (depth == 0 ? ", full history" : ", depth " + depth)
                + (submodules ? ", with submodules" : "")
                + (token.isPresent() ? ", with token" : ""));
    long start = System.nanoTime();
    CloneResult result;
    try {
      result =
          client.cloneRepository(
              spec,
              new JobCloneListener(context, settings.progressInterval(), Thread.currentThread()));
    } catch (CloneFailure failure) {
      throw error(failure, url, spec, token);
    }
    context.publish(StageKeys.SOURCE_DIR, checkout);
    context.publish(StageKeys.COMMIT_SHA, result.commitSha().toLowerCase(Locale.ROOT));
    result.commitTime().ifPresent(time -> context.publish(StageKeys.COMMIT_TIME, time));
    context
        .log()
        .line(
            "checked out "
                + result.checkedOut()
                + " at "
                + result.commitSha()
                + " in "
                + (System.nanoTime() - start) / 1_000_000
                + " ms");
  }

  /**
   * The checkout goes once every later stage is done with it (cleanups run in reverse order, the
   * git stage's last): moved aside and deleted in the background, so that the runtime has little
   * left to delete before it answers.
   */
  @Override
  public void cleanup(JobContext context) {
    client.discardCheckout(context.workspace().resolve(CHECKOUT_DIR));
  }

  @Override
  public void removeLeftovers(List<String> recorded, JobLog log) {
    client.removeLeftovers(recorded, log::line);
  }

  @Override
  public void close() {
    client.close();
  }

  /** Waits for the client's work between jobs; benchmarks and tests measure the next job. */
  void awaitMaintenance() throws InterruptedException {
    client.awaitMaintenance();
  }

  /** The one place where clone failures become codes and messages that say what would be right. */
  private StageException error(
      CloneFailure failure, URI url, CloneSpec spec, Optional<Secret> token) {
    String branch = spec.branch();
    String detail = failure.getMessage() == null ? "" : failure.getMessage();
    String host = url.getHost() + (url.getPort() < 0 ? "" : ":" + url.getPort());
    GitErrors code;
    String message;
    switch (failure.reason()) {
      case CREDENTIALS_MISSING -> {
        code = GitErrors.AUTH_FAILED;
        message =
            url + " requires credentials and the request has no github_token; pass a token that"
                + " can read the repository";
      }
      case CREDENTIALS_REFUSED -> {
        code = GitErrors.AUTH_FAILED;
        message =
            url + " refused the github_token (HTTP 401); pass a valid, unexpired token that can"
                + " read the repository";
      }
      case FORBIDDEN -> {
        code = GitErrors.AUTH_FAILED;
        message =
            url + " denied access (HTTP 403); pass a github_token whose owner may read the"
                + " repository";
      }
      case REPOSITORY_NOT_FOUND -> {
        code = GitErrors.REPO_NOT_FOUND;
        message =
            "no repository at "
                + url
                + " (HTTP 404); check repo_url (a private repository also looks missing to a"
                + " token that cannot read it)";
      }
      case BRANCH_NOT_FOUND -> {
        code = GitErrors.BRANCH_NOT_FOUND;
        message =
            (!spec.ref().isEmpty()
                    ? "ref '" + spec.ref() + "' does not exist in " + url
                    : branch.isEmpty()
                        ? url + " has no default branch"
                        : "branch '" + branch + "' does not exist in " + url)
                + "; "
                + detail;
      }
      case COMMIT_NOT_FOUND -> {
        // INVALID_REQUEST: the repository answered; the commit is not where the request says.
        code = GitErrors.COMMIT_NOT_FOUND;
        message =
            (spec.commitSha().isEmpty()
                    ? "ref '" + spec.ref() + "' of " + url + " names no commit"
                    : "commit " + spec.commitSha() + " cannot be checked out from " + url)
                + ": "
                + detail;
      }
      case UNREACHABLE -> {
        code = GitErrors.UNREACHABLE;
        message =
            "cannot reach "
                + host
                + " ("
                + detail
                + "); check repo_url's host and port and the worker's network (connect-timeout "
                + settings.connectTimeout().toMillis()
                + " ms)";
      }
      case REDIRECTED_ELSEWHERE -> {
        // INVALID_REQUEST, not EXTERNAL (git.unreachable): the server answered, and it says the
        // repository is elsewhere. Nothing is transient, so a retry fails the same way; the
        // caller must send the repository's final URL, which then passes the allow-list check
        // that the redirect would have skipped.
        code = GitErrors.INVALID_REQUEST;
        message = url + ": " + detail;
      }
      case SUBMODULE_REFUSED -> {
        code = GitErrors.SUBMODULE_REFUSED;
        message = "the repository's " + detail;
      }
      case TOO_LARGE -> {
        code = GitErrors.REPO_TOO_LARGE;
        // INVALID_REQUEST, not EXTERNAL: the server did nothing wrong and nothing here is
        // transient. The size comes from the repository the request names, so the same request
        // fails the same way on every retry and on every worker with this limit; it passes only
        // with another repo_url or branch, or once the operator raises the limit. A caller that
        // retries EXTERNAL failures must not retry this one.
        message =
            url
                + (branch.isEmpty() ? "" : " (branch " + branch + ")")
                + (spec.ref().isEmpty() ? "" : " (ref " + spec.ref() + ")")
                + (spec.commitSha().isEmpty() ? "" : " at commit " + spec.commitSha())
                + " is too large for this worker: "
                + detail
                + ". The limit, "
                + GitSettings.MAX_CHECKOUT_SIZE_KEY
                + " = "
                + Sizes.format(settings.maxCheckoutSize())
                + ", counts the data received and everything written to the checkout, .git"
                + (spec.submodules() ? " and submodules" : "")
                + " included"
                + (spec.depth() == 0 ? ", with the whole history (depth = 0)" : "")
                + ". Clone a smaller repository or branch, or raise "
                + GitSettings.MAX_CHECKOUT_SIZE_KEY
                + " in the worker's configuration";
      }
      default -> {
        code = GitErrors.CLONE_FAILED;
        message = "cloning " + url + " failed: " + detail;
      }
    }
    // JGit never sees the token in a URL, so it cannot be in a message; this is the backstop.
    // Not for toy tokens: masking "tok" would turn "token" into "****en".
    String masked =
        token
            .map(Secret::reveal)
            .filter(t -> t.length() >= MIN_MASKED_TOKEN)
            .map(t -> message.replace(t, "****"))
            .orElse(message);
    // A server that cannot be reached, or that broke a connection half-way, may answer later.
    return new StageException(code, masked, failure, code.retryable());
  }
}

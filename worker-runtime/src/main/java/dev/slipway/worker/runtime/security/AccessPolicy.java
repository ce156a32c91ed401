package dev.slipway.worker.runtime.security;

import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.runtime.config.SecuritySettings.Scopes;
import java.util.List;
import java.util.Optional;

/**
 * What a caller may build and push: its own allow-lists and the worker-wide {@code worker.policy},
 * both of which must allow a request. Checked at admission, before a job has a workspace or makes
 * any network call. A denial names the caller's rule that refused (the worker-wide policy is named,
 * not listed: callers need not learn the operator's other repositories).
 *
 * <p>Push rules match {@code registry-host/repository}. A target whose registry host is known only
 * once an auth stage runs (ECR, with no host in {@code image_name}) is matched only by rules whose
 * host part is {@value #AUTH_HOST} (or that start with {@code **}): a rule for any host, such as
 * {@code *}{@code /team/**}, does not stand for the auth stage's registry, and the auth stage's
 * registry does not stand for any host.
 */
public final class AccessPolicy {
  /** The host part of a push rule that means "the registry the auth stage supplies". */
  public static final String AUTH_HOST = "{auth}";

  private final Scopes worker;

  public AccessPolicy(Scopes worker) {
    this.worker = worker;
  }

  /**
   * Checks the repository a job would clone.
   *
   * @return why it is refused, or empty when both the caller's rules and the policy allow it
   */
  public Optional<String> checkRepository(Caller caller, String normalisedUrl) {
    String what = "repo_url " + normalisedUrl;
    if (!matchesAnyUrl(caller.scopes().repositories(), normalisedUrl)) {
      return Optional.of(what + " is not in caller '" + caller.name()
          + "' allowed-repositories " + caller.scopes().repositories());
    }
    if (!matchesAnyUrl(worker.repositories(), normalisedUrl)) {
      return Optional.of(what + " is not allowed by this worker's policy"
          + " (worker.policy.allowed-repositories)");
    }
    return Optional.empty();
  }

  /**
   * Checks one place a job would push to.
   *
   * @return why it is refused, or empty when both the caller's rules and the policy allow it
   */
  public Optional<String> checkPush(Caller caller, PushTarget target) {
    String what = "image_name pushes to " + target;
    String hint = target.registry().isPresent() ? ""
        : " (the registry host is known only once the auth stage runs: a rule for it starts with"
            + " " + AUTH_HOST + "/, such as \"" + AUTH_HOST + "/" + target.repository()
            + "\"; or name the registry host in image_name)";
    if (!matchesAnyPush(caller.scopes().pushRepositories(), target)) {
      return Optional.of(what + ", which is not in caller '" + caller.name()
          + "' allowed-push-repositories " + caller.scopes().pushRepositories() + hint);
    }
    if (!matchesAnyPush(worker.pushRepositories(), target)) {
      return Optional.of(what + ", which this worker's policy does not allow"
          + " (worker.policy.allowed-push-repositories)" + hint);
    }
    return Optional.empty();
  }

  private static boolean matchesAnyUrl(List<String> patterns, String url) {
    for (String pattern : patterns) {
      if (Globs.compile(RepositoryUrls.normalisePattern(pattern)).matcher(url).matches()) {
        return true;
      }
    }
    return false;
  }

  private static boolean matchesAnyPush(List<String> patterns, PushTarget target) {
    for (String pattern : patterns) {
      if (pattern.startsWith("**")) {
        // Everything, wherever it goes.
        if (Globs.compile(pattern).matcher(target.registry().orElse(AUTH_HOST) + "/"
            + target.repository()).matches()) {
          return true;
        }
        continue;
      }
      int slash = pattern.indexOf('/');
      String hostGlob = slash < 0 ? pattern : pattern.substring(0, slash);
      String pathGlob = slash < 0 ? "" : pattern.substring(slash + 1);
      boolean hostMatches = target.registry().isEmpty() ? hostGlob.equals(AUTH_HOST)
          : !hostGlob.equals(AUTH_HOST)
              && Globs.compile(hostGlob).matcher(target.registry().get()).matches();
      if (hostMatches && slash >= 0
          && Globs.compile(pathGlob).matcher(target.repository()).matches()) {
        return true;
      }
    }
    return false;
  }

  /**
   * The URL as the rules see it.
   *
   * @return the normalised URL, or why the URL cannot be matched safely
   */
  public static Normalisation normaliseRepository(String url) {
    RepositoryUrls.Result result = RepositoryUrls.normalise(url);
    return result instanceof RepositoryUrls.Normalised n ? new Normalisation(Optional.of(n.url()),
        "") : new Normalisation(Optional.empty(), ((RepositoryUrls.Refused) result).why());
  }

  /**
   * A normalised URL, or why there is none.
   *
   * @param url the normalised URL
   * @param refusal why the URL cannot be matched safely, when {@code url} is empty
   */
  public record Normalisation(Optional<String> url, String refusal) {}
}

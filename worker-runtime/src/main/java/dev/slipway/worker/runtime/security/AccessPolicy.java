package dev.slipway.worker.runtime.security;

import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.runtime.config.SecuritySettings.Scopes;
import java.util.List;
import java.util.Optional;

/**
 * What a caller may build and push: its own allow-lists and the worker-wide {@code worker.policy},
 * both of which must allow a request. Checked at admission, before a job has a workspace or makes
 * any network call. A denial names the rule that refused, so the caller knows what to ask for.
 */
public final class AccessPolicy {
  /** Stands for a registry host known only at run time: only a wildcard host can match it. */
  private static final String RUNTIME_HOST = "\u0000";

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
    if (!matchesAny(caller.scopes().repositories(), normalisedUrl, true)) {
      return Optional.of(what + " is not in caller '" + caller.name()
          + "' allowed-repositories " + caller.scopes().repositories());
    }
    if (!matchesAny(worker.repositories(), normalisedUrl, true)) {
      return Optional.of(what + " is not in worker.policy.allowed-repositories "
          + worker.repositories());
    }
    return Optional.empty();
  }

  /**
   * Checks one place a job would push to.
   *
   * @return why it is refused, or empty when both the caller's rules and the policy allow it
   */
  public Optional<String> checkPush(Caller caller, PushTarget target) {
    String candidate = target.registry().orElse(RUNTIME_HOST) + "/" + target.repository();
    String what = "image_name pushes to " + target;
    String hint = target.registry().isPresent() ? ""
        : " (the registry host is known only once the auth stage runs, so only a rule for any"
            + " host, such as \"*/" + target.repository() + "\", can allow it; or name the"
            + " registry host in image_name)";
    if (!matchesAny(caller.scopes().pushRepositories(), candidate, false)) {
      return Optional.of(what + ", which is not in caller '" + caller.name()
          + "' allowed-push-repositories " + caller.scopes().pushRepositories() + hint);
    }
    if (!matchesAny(worker.pushRepositories(), candidate, false)) {
      return Optional.of(what + ", which is not in worker.policy.allowed-push-repositories "
          + worker.pushRepositories() + hint);
    }
    return Optional.empty();
  }

  private static boolean matchesAny(List<String> patterns, String text, boolean url) {
    for (String pattern : patterns) {
      String p = url ? RepositoryUrls.normalisePattern(pattern) : pattern;
      if (Globs.compile(p).matcher(text).matches()) {
        return true;
      }
    }
    return false;
  }

  /** The URL as the rules see it, or empty when it is not an absolute URL with a host. */
  public static Optional<String> normaliseRepository(String url) {
    return RepositoryUrls.normalise(url);
  }
}

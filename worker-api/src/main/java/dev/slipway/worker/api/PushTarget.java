package dev.slipway.worker.api;

import java.util.Objects;
import java.util.Optional;

/**
 * A place a stage will push a job's image to, as far as it can be known before the job runs. The
 * runtime checks every one against the caller's {@code allowed-push-repositories} at admission,
 * before the job gets a workspace.
 *
 * @param registry the registry host, with its port if any ({@code registry.example.com:5000});
 *     empty when it is known only once the job runs (an auth stage supplies it), in which case
 *     only a rule that allows any host ({@code *}) can allow the target
 * @param repository the repository path inside the registry, e.g. {@code team/app}
 */
public record PushTarget(Optional<String> registry, String repository) {

  public PushTarget {
    Objects.requireNonNull(registry, "registry");
    Objects.requireNonNull(repository, "repository");
  }

  /** {@code host/repository}, or {@code <registry of the auth stage>/repository}. */
  @Override
  public String toString() {
    return registry.orElse("<registry of the auth stage>") + "/" + repository;
  }
}

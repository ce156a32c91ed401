package dev.slipway.worker.runtime.security;

import dev.slipway.worker.runtime.config.SecuritySettings.Scopes;
import java.util.List;

/**
 * Who made a call, as the worker knows it once the call's credentials have been checked.
 *
 * @param name the caller's name: in logs, JSON log fields and metrics
 * @param scopes what it may build and push
 * @param admin whether it sees and cancels every caller's jobs
 * @param authenticated false for a caller of an open method that sent no credentials
 */
public record Caller(String name, Scopes scopes, boolean admin, boolean authenticated) {

  /** Every caller, when {@code worker.callers} is empty: one trusted caller for all. */
  public static final Caller ANONYMOUS =
      new Caller("anonymous", new Scopes(List.of("**"), List.of("**")), true, true);

  /** A caller without credentials of an open method (health, or Ping if opened). */
  public static final Caller UNAUTHENTICATED =
      new Caller("unauthenticated", new Scopes(List.of(), List.of()), false, false);

  /** Whether this caller may see or act on a job started by {@code owner}. */
  public boolean mayAccessJobOf(String owner) {
    return admin || (authenticated && name.equals(owner));
  }
}

package dev.slipway.plugin.ecr;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import java.time.Clock;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code ecr} stage: gets a registry login from ECR's GetAuthorizationToken (or from the
 * cache) and publishes it as {@link StageKeys#REGISTRY_CREDENTIALS} for the push stage of the same
 * job. Holds no per-job state, so one instance serves concurrent jobs.
 */
final class EcrStage implements Stage {
  private final EcrSettings settings;
  private final EcrAuthClient client;
  private final TokenCache cache;
  private final Clock clock;

  EcrStage(EcrSettings settings, EcrAuthClient client, TokenCache cache, Clock clock) {
    this.settings = settings;
    this.client = client;
    this.cache = cache;
    this.clock = clock;
  }

  @Override
  public void execute(JobContext context) throws StageException, InterruptedException {
    if (context.isCancelled()) {
      throw new InterruptedException("the job was cancelled before the ECR login");
    }
    ClientSpec spec = settings.clientSpec();
    long start = System.nanoTime();
    TokenCache.Lookup lookup;
    TokenCache.Key key;
    try {
      key =
          new TokenCache.Key(
              settings.region(), spec.endpoint(), settings.registryIds(), client.callerIdentity());
      lookup =
          cache.get(
              key,
              settings.refreshWhenRemaining(),
              () -> {
                TokenAnswer answer =
                    client.getAuthorizationToken(settings.registryIds(), context::onCancel);
                return EcrToken.decode(answer, clock.instant());
              });
    } catch (EcrFailure failure) {
      throw error(failure, spec);
    }
    EcrToken token = lookup.token();
    RegistryLogin login = token.loginFor(context.request().imageName());
    // Mask the raw token too: it is what a docker config.json holds, base64 of user:password.
    for (RegistryLogin each : token.logins()) {
      context.addSecret(each.authorizationToken().reveal());
    }
    context.publish(StageKeys.REGISTRY_CREDENTIALS, login.credentials());
    context.publish(ISSUED, new Issued(key, token));
    context.log().line(describe(lookup, login, (System.nanoTime() - start) / 1_000_000));
  }

  /** Which cached token this job's credentials came from, for {@link #cleanup}. */
  private record Issued(TokenCache.Key key, EcrToken token) {}

  private static final dev.slipway.worker.api.StageKey<Issued> ISSUED =
      dev.slipway.worker.api.StageKey.of("ecr-issued-token", Issued.class);

  /** A registry that refused this job's credentials makes the next job ask ECR again. */
  @Override
  public void cleanup(JobContext context) {
    if (context.get(StageKeys.REJECTED_CREDENTIALS).isPresent()) {
      context.get(ISSUED).ifPresent(issued -> {
        cache.forget(issued.key(), issued.token());
        context.log().line("the registry refused the ECR login; the next job asks ECR again");
      });
    }
  }

  private String describe(TokenCache.Lookup lookup, RegistryLogin login, long millis) {
    EcrToken token = lookup.token();
    String validity =
        token.expiresAt().isPresent() && token.expiresAt().get().isAfter(token.fetchedAt())
            ? "valid until "
                + token.expiresAt().get().truncatedTo(ChronoUnit.SECONDS)
                + ", reused until "
                + token.refreshAt(settings.refreshWhenRemaining()).truncatedTo(ChronoUnit.SECONDS)
            : "ECR gave no expiry, so it is not reused";
    String others =
        token.logins().size() > 1
            ? " (" + token.logins().size() + " registries in the answer; this job's image names "
                + login.registry() + ")"
            : "";
    if (lookup.cached()) {
      return "ECR login for " + login.registry() + " (user " + login.username() + ") from the cache, "
          + validity + others;
    }
    return "ECR login for " + login.registry() + " (user " + login.username()
        + ") from GetAuthorizationToken in " + settings.region() + " in " + millis + " ms, "
        + token.attempts() + (token.attempts() == 1 ? " attempt; " : " attempts; ") + validity + others;
  }

  /** The one place where ECR failures become codes and messages that say what would be right. */
  private StageException error(EcrFailure failure, ClientSpec spec) {
    String detail = failure.getMessage() == null ? "" : failure.getMessage();
    String who = spec.credentials().describe();
    String where = spec.endpoint() + " (region " + spec.region() + ")";
    String tries =
        failure.attempts() > 0
            ? failure.attempts() + (failure.attempts() == 1 ? " attempt" : " attempts")
            : "";
    EcrErrors code;
    String message;
    switch (failure.reason()) {
      case NO_CREDENTIALS -> {
        code = EcrErrors.AUTH_FAILED;
        message = "no AWS credentials for ECR: " + detail + "; set AWS_ACCESS_KEY_ID and"
            + " AWS_SECRET_ACCESS_KEY (environment or .env), AWS_PROFILE, or give the worker an"
            + " instance or task role";
      }
      case CREDENTIALS_REFUSED -> {
        code = EcrErrors.AUTH_FAILED;
        message = where + " refused the credentials, " + who + " (" + failure.errorCode() + ": "
            + detail + "); use a valid, unexpired key pair (with AWS_SESSION_TOKEN for temporary"
            + " keys, whose id starts with ASIA) for the account of the registry";
      }
      case ACCESS_DENIED -> {
        code = EcrErrors.AUTH_FAILED;
        message = where + " denied GetAuthorizationToken to " + who + " (" + failure.errorCode()
            + ": " + detail + "); allow ecr:GetAuthorizationToken (resource \"*\") to that principal"
            + (settings.registryIds().isEmpty()
                ? ""
                : ", and check that registry-ids " + settings.registryIds() + " are registries it may use");
      }
      case UNREACHABLE -> {
        code = EcrErrors.UNREACHABLE;
        message = "cannot reach ECR at " + where + ": " + detail
            + (tries.isEmpty() ? "" : " (" + tries + ")")
            + "; check region and endpoint-override, the worker's network, DNS and proxy"
            + " (connect-timeout " + spec.connectTimeout().toMillis() + " ms, api-call-timeout "
            + spec.apiCallTimeout().toMillis() + " ms)";
      }
      case UNAVAILABLE -> {
        code = EcrErrors.UNAVAILABLE;
        message = "ECR at " + where + " failed GetAuthorizationToken (" + failure.errorCode() + ": "
            + detail + ")" + (tries.isEmpty() ? "" : " on all " + tries)
            + "; retry the job later, or raise max-attempts if ECR throttles the worker";
      }
      case INVALID_RESPONSE -> {
        code = EcrErrors.INVALID_RESPONSE;
        message = "ECR at " + where + " answered GetAuthorizationToken with something else than a"
            + " token: " + detail + "; check that endpoint-override points at ECR's API";
      }
      default -> {
        code = EcrErrors.FAILED;
        message = "GetAuthorizationToken at " + where + " failed ("
            + (failure.errorCode().isEmpty() ? "" : failure.errorCode() + ": ") + detail + ")"
            + (settings.registryIds().isEmpty() ? "" : "; check registry-ids " + settings.registryIds());
      }
    }
    // Unreachable or failing ECR may recover: the orchestrator may send the job again.
    return new StageException(code, masked(message), failure, code.retryable());
  }

  /**
   * The backstop: the adapter already keeps secrets out of its messages; anything that still
   * holds the secret key or session token is masked here.
   */
  private String masked(String message) {
    List<Secret> secrets = new ArrayList<>(settings.credentials().secrets());
    String result = message;
    for (Secret secret : secrets) {
      if (secret.reveal().length() >= 8) {
        result = result.replace(secret.reveal(), "****");
      }
    }
    return result;
  }

  /** The client the stage calls ECR through. */
  EcrAuthClient client() {
    return client;
  }

  @Override
  public void close() {
    client.close();
  }
}

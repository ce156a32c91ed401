package dev.slipway.plugin.ecr;

import java.util.List;
import java.util.function.Consumer;

/**
 * The two things the stage needs from AWS, as small as jib's {@code DockerClient}: it keeps the
 * AWS SDK's types inside {@code dev.slipway.plugin.ecr.sdk} and lets the stage be tested with a
 * fake. Implementations are thread-safe; one serves every job of the worker.
 */
public interface EcrAuthClient extends AutoCloseable {

  /**
   * Who the calls are signed as, to key cached tokens: the access key id of the credentials in
   * use. Costs no call to AWS: static keys are known; the SDK's default chain resolves (and
   * caches) its credentials locally, from a profile, the container or the instance role.
   *
   * @throws EcrFailure with {@link EcrFailure.Reason#NO_CREDENTIALS} when no credentials are found
   */
  String callerIdentity() throws EcrFailure;

  /**
   * Mirrors {@code aws ecr get-authorization-token [--registry-ids ID ...]}: one signed call,
   * with the configured retries and timeouts.
   *
   * @param registryIds the AWS account ids of the registries; empty for the caller's own
   * @param onCancel receives an action that aborts the call in flight; the stage registers it
   *     with the job, so that a cancelled job does not wait for the network
   * @return the answer, unchecked
   * @throws EcrFailure when the call fails; its reason decides the error code
   * @throws InterruptedException when the call was aborted or the thread interrupted
   */
  TokenAnswer getAuthorizationToken(List<String> registryIds, Consumer<Runnable> onCancel)
      throws EcrFailure, InterruptedException;

  /** Releases the HTTP client and the credential provider. */
  @Override
  void close();
}

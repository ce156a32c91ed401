package dev.slipway.plugin.ecr.sdk;

import dev.slipway.plugin.ecr.AuthorizationData;
import dev.slipway.plugin.ecr.ClientSpec;
import dev.slipway.plugin.ecr.CredentialsSource;
import dev.slipway.plugin.ecr.EcrAuthClient;
import dev.slipway.plugin.ecr.EcrFailure;
import dev.slipway.plugin.ecr.TokenAnswer;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.StageConfigException;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsSessionCredentials;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.SdkHttpClient;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.ecr.EcrClient;
import software.amazon.awssdk.services.ecr.EcrClientBuilder;
import software.amazon.awssdk.services.ecr.model.GetAuthorizationTokenRequest;
import software.amazon.awssdk.services.ecr.model.GetAuthorizationTokenResponse;
import software.amazon.awssdk.utils.SdkAutoCloseable;

/**
 * {@link EcrAuthClient} over the AWS SDK v2's {@link EcrClient}, with the URL-connection HTTP
 * client (no Netty, no Apache client: it works on the module path and in a jlink image with
 * nothing but the JDK), the configured retries and timeouts, and static keys from the worker's
 * environment or else the SDK's default credential chain. The only class of the plugin, with
 * its two helpers, that names an SDK type.
 */
public final class SdkEcrAuthClient implements EcrAuthClient {
  private final ClientSpec spec;
  private final AwsCredentialsProvider credentials;
  private final SdkHttpClient http;
  private final EcrClient ecr;

  private SdkEcrAuthClient(ClientSpec spec, AwsCredentialsProvider credentials, SdkHttpClient http, EcrClient ecr) {
    this.spec = spec;
    this.credentials = credentials;
    this.http = http;
    this.ecr = ecr;
  }

  /**
   * Builds the client; no call to AWS is made until the first job.
   *
   * @throws StageConfigException when the SDK refuses the settings
   */
  public static SdkEcrAuthClient create(ClientSpec spec) throws StageConfigException {
    AwsCredentialsProvider credentials = credentialsProvider(spec.credentials());
    SdkHttpClient http =
        new AbortableHttpClient(
            UrlConnectionHttpClient.builder()
                .connectionTimeout(spec.connectTimeout())
                // The longest wait between two reads; the whole call is bounded by apiCallTimeout.
                .socketTimeout(spec.apiCallTimeout())
                .build());
    try {
      EcrClientBuilder builder =
          EcrClient.builder()
              .region(Region.of(spec.region()))
              .credentialsProvider(credentials)
              .httpClient(http)
              .overrideConfiguration(
                  o ->
                      o.apiCallTimeout(spec.apiCallTimeout())
                          .retryStrategy(r -> r.maxAttempts(spec.maxAttempts())));
      spec.endpointOverride().ifPresent(builder::endpointOverride);
      return new SdkEcrAuthClient(spec, credentials, http, builder.build());
    } catch (SdkException | IllegalArgumentException e) {
      http.close();
      closeQuietly(credentials);
      throw new StageConfigException(
          "the AWS SDK refused the ECR client's settings (region "
              + spec.region()
              + ", endpoint "
              + spec.endpoint()
              + "): "
              + SdkErrors.mask(e.getMessage(), spec.credentials().secrets()));
    }
  }

  private static AwsCredentialsProvider credentialsProvider(CredentialsSource source) {
    if (source.isStatic()) {
      String keyId = source.accessKeyId().orElseThrow();
      String secret = source.secretAccessKey().orElseThrow().reveal();
      return StaticCredentialsProvider.create(
          source.sessionToken().isPresent()
              ? AwsSessionCredentials.create(keyId, secret, source.sessionToken().get().reveal())
              : AwsBasicCredentials.create(keyId, secret));
    }
    DefaultCredentialsProvider.Builder chain = DefaultCredentialsProvider.builder();
    source.profile().ifPresent(chain::profileName);
    return chain.build();
  }

  @Override
  public String callerIdentity() throws EcrFailure {
    if (spec.credentials().isStatic()) {
      return spec.credentials().accessKeyId().orElseThrow();
    }
    try {
      // The chain caches what it resolved, so this is cheap after the first job.
      return credentials.resolveCredentials().accessKeyId();
    } catch (SdkException e) {
      EcrFailure failure = SdkErrors.map(e, 0, secrets());
      if (failure.reason() == EcrFailure.Reason.FAILED || SdkErrors.isMissingCredentials(e)) {
        throw new EcrFailure(
            EcrFailure.Reason.NO_CREDENTIALS,
            SdkErrors.mask(e.getMessage(), secrets()),
            e.getClass().getSimpleName(),
            0,
            e);
      }
      throw failure;
    }
  }

  @Override
  public TokenAnswer getAuthorizationToken(List<String> registryIds, Consumer<Runnable> onCancel)
      throws EcrFailure, InterruptedException {
    AbortableHttpClient.Call call = new AbortableHttpClient.Call();
    onCancel.accept(call::abort);
    GetAuthorizationTokenRequest request = request(registryIds);
    GetAuthorizationTokenResponse response;
    try {
      response = AbortableHttpClient.within(call, () -> ecr.getAuthorizationToken(request));
    } catch (SdkException e) {
      if (call.aborted() || SdkErrors.isInterruption(e)) {
        InterruptedException interrupted =
            new InterruptedException("the ECR call was aborted: the job was cancelled");
        interrupted.initCause(e);
        throw interrupted;
      }
      throw SdkErrors.map(e, Math.max(call.attempts(), attempts(e)), secrets());
    }
    if (call.aborted()) {
      throw new InterruptedException("the job was cancelled during the ECR call");
    }
    List<AuthorizationData> data =
        response.authorizationData().stream()
            .map(
                d ->
                    new AuthorizationData(
                        Optional.ofNullable(d.authorizationToken()).map(Secret::of),
                        Optional.ofNullable(d.expiresAt()),
                        d.proxyEndpoint() == null ? "" : d.proxyEndpoint()))
            .toList();
    return new TokenAnswer(data, Math.max(1, call.attempts()));
  }

  /**
   * AWS deprecated {@code registryIds}: a token now works for every registry the principal may
   * use. The ids still decide which registries' proxy endpoints come back, which is what the
   * stage hands on, so the setting stays; ECR still accepts it.
   */
  @SuppressWarnings("deprecation")
  private static GetAuthorizationTokenRequest request(List<String> registryIds) {
    return registryIds.isEmpty()
        ? GetAuthorizationTokenRequest.builder().build()
        : GetAuthorizationTokenRequest.builder().registryIds(registryIds).build();
  }

  private static int attempts(SdkException e) {
    Integer attempts = e.numAttempts();
    return attempts == null ? 0 : attempts;
  }

  private List<Secret> secrets() {
    return spec.credentials().secrets();
  }

  @Override
  public void close() {
    ecr.close();
    // An HTTP client and a credential provider passed to the builder are the caller's to close.
    http.close();
    closeQuietly(credentials);
  }

  private static void closeQuietly(AwsCredentialsProvider provider) {
    if (provider instanceof SdkAutoCloseable closeable) {
      closeable.close();
    }
  }
}

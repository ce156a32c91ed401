/**
 * The {@code ecr} stage: logs in to Amazon ECR with the AWS SDK v2's GetAuthorizationToken
 * (cached per region, registry ids and caller) and hands the registry credentials to the push
 * stage of the same job.
 *
 * <p>Exports nothing: the runtime reaches the plugin only through its {@code StageFactory}, and
 * the SDK's types stay in {@code dev.slipway.plugin.ecr.sdk}. The SDK jars are automatic modules;
 * the ones named here are those the plugin's code uses (an automatic module reads every other,
 * so the rest resolve with them). The HTTP client is the URL-connection one, passed explicitly:
 * no Netty, no Apache client, nothing found through the class path.
 */
module dev.slipway.plugin.ecr {
  requires dev.slipway.worker.api;
  requires software.amazon.awssdk.services.ecr;
  requires software.amazon.awssdk.core;
  requires software.amazon.awssdk.awscore;
  requires software.amazon.awssdk.auth;
  requires software.amazon.awssdk.identity.spi;
  requires software.amazon.awssdk.regions;
  requires software.amazon.awssdk.http;
  requires software.amazon.awssdk.http.urlconnection;
  requires software.amazon.awssdk.retries.api;
  requires software.amazon.awssdk.utils;

  provides dev.slipway.worker.api.StageFactory with
      dev.slipway.plugin.ecr.EcrStageFactory;
}

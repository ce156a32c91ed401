/**
 * Test support for Slipway: {@link dev.slipway.worker.testkit.RecordingJobContext} runs a stage
 * without a worker, and the test stages (ids {@code test-*}) exercise the runtime's behaviour
 * without Docker. Never put this module into a production image.
 */
module dev.slipway.worker.testkit {
  requires transitive dev.slipway.worker.api;
  requires org.slf4j;
  // The loopback git server for tests runs git http-backend behind the JDK HTTP server.
  requires jdk.httpserver;
  // TestCertificates builds X.509 certificates with BouncyCastle's PKIX API (its ASN.1 types
  // live in the provider module, which org.bouncycastle.pkix does not re-export).
  requires org.bouncycastle.pkix;
  requires org.bouncycastle.provider;

  exports dev.slipway.worker.testkit;

  provides dev.slipway.worker.api.StageFactory with
      dev.slipway.worker.testkit.stages.BlockingStageFactory,
      dev.slipway.worker.testkit.stages.FailingStageFactory,
      dev.slipway.worker.testkit.stages.PublishingStageFactory,
      dev.slipway.worker.testkit.stages.ConsumingStageFactory,
      dev.slipway.worker.testkit.stages.SecretLoggingStageFactory,
      dev.slipway.worker.testkit.stages.PushTargetStageFactory,
      dev.slipway.worker.testkit.stages.StubbornStageFactory,
      dev.slipway.worker.testkit.stages.OptionsStageFactory;
}

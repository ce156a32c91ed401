package dev.slipway.plugin.ecr;

import static dev.slipway.plugin.ecr.EcrTestSupport.config;
import static dev.slipway.plugin.ecr.EcrTestSupport.context;
import static dev.slipway.plugin.ecr.EcrTestSupport.environment;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.plugin.ecr.sdk.SdkEcrAuthClient;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.EcrStandIn;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SDK client is built by the first job, once, over the real SDK and the ECR stand-in; the
 * settings are still checked when the stage is created.
 */
class LazyAuthClientTest {
  @TempDir Path workspace;

  @Test
  void theClientIsBuiltByTheFirstJobNotByCreate() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start()) {
      EcrSettings settings = EcrSettings.from(config(ecr, ""), environment(ecr));
      AtomicInteger built = new AtomicInteger();
      LazyAuthClient client = new LazyAuthClient(() -> {
        built.incrementAndGet();
        return SdkEcrAuthClient.create(settings.clientSpec());
      });
      try (var stage = new EcrStageFactory().create(settings, client)) {
        assertFalse(client.built());
        assertEquals(0, built.get());

        var context = context(workspace);
        stage.execute(context);
        assertTrue(client.built());
        assertTrue(context.get(StageKeys.REGISTRY_CREDENTIALS).isPresent());
        stage.execute(context(workspace));
        assertEquals(1, built.get(), "one client for every job");
        assertEquals(1, ecr.calls(), "the second job's token came from the cache");
      }
    }
  }

  @Test
  void theFactoryDefersTheClient() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start();
        var stage = (EcrStage) EcrTestSupport.stage(new EcrStageFactory(), ecr, "")) {
      LazyAuthClient client = (LazyAuthClient) stage.client();
      assertFalse(client.built());
      stage.execute(context(workspace));
      assertTrue(client.built());
    }
  }

  @Test
  void concurrentFirstJobsShareOneClient() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start()) {
      EcrSettings settings = EcrSettings.from(config(ecr, ""), environment(ecr));
      AtomicInteger built = new AtomicInteger();
      CountDownLatch go = new CountDownLatch(1);
      try (LazyAuthClient client = new LazyAuthClient(() -> {
        built.incrementAndGet();
        return SdkEcrAuthClient.create(settings.clientSpec());
      })) {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
          List<Future<String>> identities = new ArrayList<>();
          for (int i = 0; i < 4; i++) {
            identities.add(pool.submit(() -> {
              go.await();
              return client.callerIdentity();
            }));
          }
          go.countDown();
          for (Future<String> identity : identities) {
            assertEquals(ecr.accessKeyId(), identity.get());
          }
        } finally {
          pool.shutdownNow();
        }
        assertEquals(1, built.get());
      }
    }
  }

  @Test
  void aStageClosedBeforeAnyJobBuildsNoClient() throws Exception {
    AtomicInteger built = new AtomicInteger();
    LazyAuthClient client = new LazyAuthClient(() -> {
      built.incrementAndGet();
      throw new AssertionError("no client may be built");
    });
    client.close();
    assertEquals(0, built.get());
    EcrFailure failure = assertThrows(EcrFailure.class, client::callerIdentity);
    assertEquals(EcrFailure.Reason.FAILED, failure.reason());
    assertEquals(0, built.get());
  }

  @Test
  void theSdkRefusingTheSettingsAtTheFirstJobIsAFailureThatSaysWhy() throws Exception {
    try (EcrStandIn ecr = EcrStandIn.start()) {
      EcrSettings settings = EcrSettings.from(config(ecr, ""), environment(ecr));
      LazyAuthClient client = new LazyAuthClient(() -> {
        throw new StageConfigException("the AWS SDK refused the ECR client's settings: test");
      });
      try (var stage = new EcrStage(settings, client, new TokenCache(Clock.systemUTC()),
          Clock.systemUTC())) {
        var error = assertThrows(dev.slipway.worker.api.StageException.class,
            () -> stage.execute(context(workspace)));
        assertEquals(EcrErrors.FAILED.code(), error.code());
        assertTrue(error.getMessage().contains("the AWS SDK refused the ECR client's settings"),
            error.getMessage());
        assertEquals(0, ecr.calls());
      }
    }
  }

  @Test
  void badSettingsAreStillRefusedWhenTheStageIsCreated() {
    try (EcrStandIn ecr = EcrStandIn.start()) {
      StageConfigException e = assertThrows(StageConfigException.class,
          () -> new EcrStageFactory().create(config(ecr, "endpoint-override = \"ftp://x\""),
              environment(ecr)));
      assertTrue(String.join("\n", e.problems()).contains("endpoint-override"), e::getMessage);
    }
  }
}

package dev.slipway.plugin.ecr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.testkit.EcrStandIn;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Without keys in the worker's environment the SDK's default chain is asked; here (surefire's
 * environment: no keys, no profile files, instance metadata disabled) it finds nothing, at once
 * and without probing 169.254.169.254.
 */
class EcrDefaultChainTest {
  @TempDir Path workspace;

  @Test
  void noCredentialsAnywhereIsAnAuthFailureThatSaysWhereToPutThem() throws Exception {
    // What keeps the default chain on this machine; the pom's surefire section sets it up.
    assertEquals(
        "true",
        System.getenv("AWS_EC2_METADATA_DISABLED"),
        "the build must disable instance metadata so that no test probes 169.254.169.254");
    for (String name :
        List.of(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE")) {
      // Unset, not empty: the SDK takes an empty container URI as set and calls 169.254.170.2.
      assertNull(System.getenv(name), name + " must be unset in tests");
    }
    try (EcrStandIn ecr = EcrStandIn.start();
        Stage stage =
            new EcrStageFactory()
                .create(EcrTestSupport.config(ecr, ""), new EcrTestSupport.Environment())) {
      long start = System.nanoTime();
      StageException e =
          assertThrows(StageException.class, () -> stage.execute(EcrTestSupport.context(workspace)));
      long millis = (System.nanoTime() - start) / 1_000_000;

      assertEquals("ecr.auth-failed", e.code());
      assertTrue(e.getMessage().startsWith("no AWS credentials for ECR: "), e::getMessage);
      assertTrue(e.getMessage().contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), e::getMessage);
      assertEquals(0, ecr.calls(), "nothing is sent unsigned");
      assertTrue(e.getMessage().contains("IMDS credentials have been disabled"), e::getMessage);
      assertFalse(e.getMessage().contains("Failed to load credentials from metadata service"), e::getMessage);
      assertTrue(millis < 5_000, "took " + millis + " ms");
    }
  }
}

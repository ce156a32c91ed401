package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PrivateImageNameTest {

  @ParameterizedTest
  @CsvSource({
    "job-1, slipway.local/job-1-0a1b2c3d:build",
    "Job.A_b, slipway.local/job-a-b-0a1b2c3d:build",
    "a..b, slipway.local/a--b-0a1b2c3d:build",
    "a._-b, slipway.local/a---b-0a1b2c3d:build",
    "9-, slipway.local/9--0a1b2c3d:build",
    "UPPER, slipway.local/upper-0a1b2c3d:build"
  })
  void lowerCasesAndTurnsSeparatorsIntoDashes(String jobId, String expected) {
    assertEquals(expected, PrivateImageName.forJob(jobId, "0a1b2c3d"));
  }

  @Test
  void everyJobIdTheRuntimeAcceptsGivesAValidReference() {
    String first = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    String rest = first + "._-";
    Random random = new Random(42);
    for (int i = 0; i < 5_000; i++) {
      StringBuilder id = new StringBuilder().append(first.charAt(random.nextInt(first.length())));
      int length = random.nextInt(128);
      for (int j = 0; j < length; j++) {
        id.append(rest.charAt(random.nextInt(rest.length())));
      }
      String name = PrivateImageName.forJob(id.toString());
      assertTrue(ImageReference.isValid(name), id + " -> " + name);
      assertTrue(name.startsWith(PrivateImageName.NAMESPACE) && name.endsWith(":build"), name);
    }
    String longest = PrivateImageName.forJob("J".repeat(128));
    assertTrue(ImageReference.isValid(longest), longest);
  }

  @Test
  void isUniquePerBuildEvenForTheSameOrLookAlikeJobIds() {
    Set<String> names = new HashSet<>();
    for (int i = 0; i < 1000; i++) {
      assertTrue(names.add(PrivateImageName.forJob(i % 2 == 0 ? "Job-1" : "job.1")), "a name came twice");
    }
    assertNotEquals(PrivateImageName.forJob("same"), PrivateImageName.forJob("same"));
  }
}

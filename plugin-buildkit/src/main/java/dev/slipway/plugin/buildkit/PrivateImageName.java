package dev.slipway.plugin.buildkit;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Locale;

/**
 * The job-private name a build is tagged with in the engine, {@code
 * slipway.local/<job-id>-<8 hex>:build}, never the caller's {@code image_name}: the engine is
 * shared by every job of the worker (and perhaps by other workers and people), so a caller's name
 * may already be taken by someone else's image, or by another job that builds the same name at
 * the same moment.
 *
 * <p>The job id ({@code [A-Za-z0-9][A-Za-z0-9._-]{0,127}}) is lower-cased and its separators
 * become {@code -}, which Docker's reference grammar allows in any run ({@code .} and {@code _}
 * may not repeat or meet, a component may not end in one). That is lossy ({@code Job-1} and
 * {@code job.1} look alike), so 32 random bits make the name unique per job, also across workers
 * whose job ids collide on one engine. {@code slipway.local} is a host name no registry has: the
 * name can never be pushed by accident. The push stage removes any name under it that the build
 * stage published, and the build stage removes its own in {@code cleanup}, however the job ended.
 */
final class PrivateImageName {
  /** The namespace of job-private names; docker-push removes a published local image under it. */
  static final String NAMESPACE = "slipway.local/";

  static final String TAG = "build";
  private static final SecureRandom RANDOM = new SecureRandom();

  private PrivateImageName() {}

  /** A fresh private name for one build of job {@code jobId}. */
  static String forJob(String jobId) {
    byte[] random = new byte[4];
    RANDOM.nextBytes(random);
    return forJob(jobId, HexFormat.of().formatHex(random));
  }

  /** The private name for {@code jobId} with the given unique suffix (lower-case hex). */
  static String forJob(String jobId, String suffix) {
    StringBuilder component = new StringBuilder(jobId.length());
    for (char c : jobId.toCharArray()) {
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        component.append(c);
      } else if (c >= 'A' && c <= 'Z') {
        component.append(Character.toLowerCase(c));
      } else {
        component.append('-');
      }
    }
    String path = component.toString().toLowerCase(Locale.ROOT).replaceFirst("^-+", "");
    if (path.isEmpty()) {
      path = "job";
    }
    String name = NAMESPACE + path + "-" + suffix + ":" + TAG;
    if (!ImageReference.isValid(name)) {
      // Cannot happen for the job ids the runtime accepts; a guard for any other caller.
      throw new IllegalArgumentException("no valid private image name for job id '"
          + ImageReference.printable(jobId) + "': " + name);
    }
    return name;
  }
}

package dev.slipway.worker.runtime.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;

/**
 * {@code worker.limits}: what one request may ask and one job may produce. A request beyond them
 * is refused with {@code INVALID_ARGUMENT} naming the field and the limit, before any workspace or
 * network call.
 *
 * @param tokenMinLength the shortest {@code github_token}: a shorter one would mask ordinary words
 *     in every log line of its job
 * @param tokenMaxLength the longest {@code github_token}
 * @param buildArgs bounds of {@code build_args}
 * @param buildSecrets bounds of {@code build_secrets}
 * @param repoUrlMaxLength the longest {@code repo_url}
 * @param imageNameMaxLength the longest {@code image_name}
 * @param pathMaxLength the longest {@code dockerfile_path} and {@code context_dir}
 * @param stringMaxLength the longest other string field ({@code branch})
 * @param maxInboundMessageSize the largest gRPC message the server accepts, in bytes
 * @param jobOutput the most log output of one job that reaches its events and the log, in bytes
 */
public record Limits(
    int tokenMinLength,
    int tokenMaxLength,
    MapBounds buildArgs,
    MapBounds buildSecrets,
    int repoUrlMaxLength,
    int imageNameMaxLength,
    int pathMaxLength,
    int stringMaxLength,
    int maxInboundMessageSize,
    long jobOutput) {

  /**
   * Bounds of a map field.
   *
   * @param maxEntries how many entries
   * @param maxValueLength the longest value, in characters
   * @param maxTotalLength all keys and values together, in characters
   */
  public record MapBounds(int maxEntries, int maxValueLength, int maxTotalLength) {}

  /** The defaults of reference.conf, for tests and tools that build a job manager by hand. */
  public static Limits defaults() {
    MapBounds maps = new MapBounds(128, 8 * 1024, 64 * 1024);
    return new Limits(8, 4096, maps, maps, 2048, 255, 4096, 4096, 1024 * 1024,
        16L * 1024 * 1024);
  }

  static Limits from(Config config, ConfigProblems problems) {
    return new Limits(
        positive(config, problems, "worker.limits.github-token.min-length"),
        positive(config, problems, "worker.limits.github-token.max-length"),
        bounds(config, problems, "worker.limits.build-args"),
        bounds(config, problems, "worker.limits.build-secrets"),
        positive(config, problems, "worker.limits.repo-url-max-length"),
        positive(config, problems, "worker.limits.image-name-max-length"),
        positive(config, problems, "worker.limits.path-max-length"),
        positive(config, problems, "worker.limits.string-max-length"),
        (int) Math.min(Integer.MAX_VALUE,
            bytes(config, problems, "worker.limits.max-inbound-message-size")),
        bytes(config, problems, "worker.limits.job-output"));
  }

  private static MapBounds bounds(Config config, ConfigProblems problems, String path) {
    return new MapBounds(positive(config, problems, path + ".max-entries"),
        positive(config, problems, path + ".max-value-length"),
        positive(config, problems, path + ".max-total-length"));
  }

  private static int positive(Config config, ConfigProblems problems, String path) {
    try {
      int value = config.getInt(path);
      if (value < 1) {
        problems.add(config.getValue(path).origin().description() + ": " + path + ": " + value
            + " must be at least 1");
        return 1;
      }
      return value;
    } catch (ConfigException e) {
      problems.add(e);
      return 1;
    }
  }

  private static long bytes(Config config, ConfigProblems problems, String path) {
    try {
      long value = config.getBytes(path);
      if (value < 1024) {
        problems.add(config.getValue(path).origin().description() + ": " + path + ": " + value
            + " bytes is too small; give a size of at least 1KiB, e.g. 1MiB");
        return 1024;
      }
      return value;
    } catch (ConfigException e) {
      problems.add(e);
      return 1024;
    }
  }
}

package dev.slipway.plugin.git;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.slipway.worker.api.StageConfigException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * The git stage's configuration, the block {@code worker.stages.git}, read and checked once at
 * start-up. See {@code reference.conf} for what each setting means.
 *
 * @param timeout longest the stage may take (the runtime enforces it)
 * @param depth commits of history to fetch; 0 for all
 * @param submodules whether to clone submodules too
 * @param allowedSchemes URL schemes repo_url may use, lower case
 * @param connectTimeout connect timeout of each request to the git server, and longest wait
 *     between two reads of its answer
 * @param progressInterval least time between two progress lines
 * @param maxCheckoutSize most bytes a clone may receive and write into its checkout
 */
record GitSettings(
    Duration timeout,
    int depth,
    boolean submodules,
    List<String> allowedSchemes,
    Duration connectTimeout,
    Duration progressInterval,
    long maxCheckoutSize) {

  static final Set<String> KEYS =
      Set.of(
          "timeout",
          "depth",
          "submodules",
          "allowed-schemes",
          "connect-timeout",
          "progress-interval",
          "max-checkout-size");

  /** The full key, for messages that tell an operator what to change. */
  static final String MAX_CHECKOUT_SIZE_KEY = "worker.stages.git.max-checkout-size";

  private static final Duration MIN_PROGRESS_INTERVAL = Duration.ofMillis(100);
  private static final Duration MIN_CONNECT_TIMEOUT = Duration.ofMillis(100);

  GitSettings {
    allowedSchemes = List.copyOf(allowedSchemes);
  }

  /**
   * Reads every setting of {@code config}, the {@code worker.stages.git} block.
   *
   * @throws StageConfigException listing every problem found, each naming its key
   */
  static GitSettings from(Config config) throws StageConfigException {
    List<String> problems = new ArrayList<>();
    for (String key : new TreeSet<>(config.root().keySet())) {
      if (!KEYS.contains(key)) {
        // Most often a typo, which would otherwise silently leave the default in force.
        problems.add(key + ": unknown key; known keys are " + new TreeSet<>(KEYS));
      }
    }
    Duration timeout =
        read(config, "timeout", "a duration such as 10m", problems, config::getDuration);
    if (timeout != null && (timeout.isZero() || timeout.isNegative())) {
      problems.add("timeout: must be more than 0, e.g. 10m");
    }
    Integer depth = read(config, "depth", "a whole number such as 1", problems, config::getInt);
    if (depth != null && depth < 0) {
      problems.add("depth: " + depth + " is not allowed; use 0 for full history or 1 or more commits");
    }
    Boolean submodules =
        read(config, "submodules", "true or false", problems, config::getBoolean);
    List<String> schemes =
        read(config, "allowed-schemes", "a list such as [https]", problems, config::getStringList);
    if (schemes != null) {
      schemes = schemes(schemes, problems);
    }
    Duration connectTimeout =
        read(config, "connect-timeout", "a duration such as 30s", problems, config::getDuration);
    if (connectTimeout != null
        && (connectTimeout.compareTo(MIN_CONNECT_TIMEOUT) < 0
            || connectTimeout.toMillis() > Integer.MAX_VALUE)) {
      problems.add(
          "connect-timeout: "
              + connectTimeout.toMillis()
              + "ms is not allowed; use at least 100ms and at most 24 days, e.g. 30s");
    }
    Duration progressInterval =
        read(config, "progress-interval", "a duration such as 500ms", problems, config::getDuration);
    if (progressInterval != null && progressInterval.compareTo(MIN_PROGRESS_INTERVAL) < 0) {
      problems.add(
          "progress-interval: "
              + progressInterval.toMillis()
              + "ms is too short; use at least 100ms so that progress stays at a few lines a"
              + " second");
    }
    Long maxCheckoutSize =
        read(config, "max-checkout-size", "a size such as 2GiB", problems, config::getBytes);
    if (maxCheckoutSize != null && maxCheckoutSize <= 0) {
      problems.add(
          "max-checkout-size: "
              + maxCheckoutSize
              + " is not allowed; use a size of more than 0 bytes, e.g. 2GiB");
    }
    if (!problems.isEmpty()) {
      throw new StageConfigException(problems);
    }
    return new GitSettings(
        timeout, depth, submodules, schemes, connectTimeout, progressInterval, maxCheckoutSize);
  }

  private static List<String> schemes(List<String> configured, List<String> problems) {
    Set<String> schemes = new LinkedHashSet<>();
    for (String scheme : configured) {
      String lower = scheme.toLowerCase(Locale.ROOT).trim();
      if (!UrlPolicy.SUPPORTED_SCHEMES.contains(lower)) {
        problems.add(
            "allowed-schemes: '"
                + scheme
                + "' is not supported; use some of "
                + UrlPolicy.SUPPORTED_SCHEMES);
      } else {
        schemes.add(lower);
      }
    }
    if (configured.isEmpty()) {
      problems.add("allowed-schemes: is empty, so no repository could be cloned; use [https]");
    }
    return List.copyOf(schemes);
  }

  private static <T> T read(
      Config config,
      String key,
      String expected,
      List<String> problems,
      Function<String, T> getter) {
    try {
      return getter.apply(key);
    } catch (ConfigException.Missing e) {
      problems.add(key + ": missing; expected " + expected);
    } catch (ConfigException e) {
      // Typesafe's own message names the file and line, which is what an operator needs.
      problems.add(key + ": expected " + expected + " (" + e.getMessage() + ")");
    }
    return null;
  }
}

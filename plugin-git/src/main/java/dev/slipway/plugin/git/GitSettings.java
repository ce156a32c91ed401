package dev.slipway.plugin.git;

import com.typesafe.config.Config;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageSettings;
import dev.slipway.worker.api.WorkerEnvironment;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The git stage's configuration, the block {@code worker.stages.git}, read and checked once at
 * start-up. See {@code reference.conf} for what each setting means.
 *
 * @param depth commits of history to fetch; 0 for all
 * @param submodules whether to clone submodules too
 * @param allowedSchemes URL schemes repo_url may use, lower case
 * @param connectTimeout connect timeout of each request to the git server, and longest wait
 *     between two reads of its answer
 * @param progressInterval least time between two progress lines
 * @param maxCheckoutSize most bytes a clone may receive and write into its checkout
 * @param cache the per-repository mirror cache
 */
record GitSettings(
    int depth,
    boolean submodules,
    List<String> allowedSchemes,
    Duration connectTimeout,
    Duration progressInterval,
    long maxCheckoutSize,
    CacheSettings cache) {

  /** The full key, for messages that tell an operator what to change. */
  static final String MAX_CHECKOUT_SIZE_KEY = "worker.stages.git.max-checkout-size";

  private static final Duration MIN_PROGRESS_INTERVAL = Duration.ofMillis(100);
  private static final Duration MIN_CONNECT_TIMEOUT = Duration.ofMillis(100);

  /**
   * Where the mirrors live when {@code cache.dir} is empty, relative to the worker's working
   * directory: beside the runtime's default {@code worker.workspace-root} ({@code tmp/repos}), on
   * the same file system as the workspaces, outside every one of them.
   */
  static final String DEFAULT_CACHE_DIR = "tmp/git-cache";

  GitSettings {
    allowedSchemes = List.copyOf(allowedSchemes);
  }

  /**
   * Reads every setting of {@code config}, the {@code worker.stages.git} block. The runtime has
   * refused unknown keys already, and owns {@code timeout}.
   *
   * @throws StageConfigException listing every problem found, each naming its key
   */
  static GitSettings from(Config config, WorkerEnvironment environment)
      throws StageConfigException {
    StageSettings s = new StageSettings(config, environment.home());
    int depth = s.read("depth", config::getInt, 1);
    if (depth < 0) {
      s.problem("depth", depth + " is not allowed; use 0 for full history or 1 or more commits");
    }
    boolean submodules = s.bool("submodules");
    List<String> schemes = schemes(s, s.stringList("allowed-schemes"));
    Duration connectTimeout =
        s.read("connect-timeout", config::getDuration, MIN_CONNECT_TIMEOUT);
    if (connectTimeout.compareTo(MIN_CONNECT_TIMEOUT) < 0
        || connectTimeout.toMillis() > Integer.MAX_VALUE) {
      // JGit takes it in whole milliseconds, as an int.
      s.problem("connect-timeout", StageSettings.human(connectTimeout)
          + " is not allowed; use at least 100ms and at most 24 days, e.g. 30s");
    }
    Duration progressInterval =
        s.read("progress-interval", config::getDuration, MIN_PROGRESS_INTERVAL);
    if (progressInterval.compareTo(MIN_PROGRESS_INTERVAL) < 0) {
      s.problem("progress-interval", StageSettings.human(progressInterval)
          + " is too short; use at least 100ms so that progress stays at a few lines a second");
    }
    long maxCheckoutSize = s.read("max-checkout-size", config::getBytes, 1L);
    if (maxCheckoutSize <= 0) {
      s.problem("max-checkout-size", maxCheckoutSize
          + " is not allowed; use a size of more than 0 bytes, e.g. 2GiB");
    }
    CacheSettings cache = cache(s);
    s.throwIfAny();
    return new GitSettings(
        depth, submodules, schemes, connectTimeout, progressInterval, maxCheckoutSize, cache);
  }

  private static CacheSettings cache(StageSettings s) {
    boolean enabled = s.bool("cache.enabled");
    String configured = s.string("cache.dir");
    // Relative to the working directory, as worker.workspace-root is: the cache is data of this
    // worker, not part of its installation (the home may be read-only).
    Path workingDirectory = Path.of("").toAbsolutePath();
    Path dir = workingDirectory.resolve(DEFAULT_CACHE_DIR);
    if (!configured.isEmpty()) {
      try {
        dir = workingDirectory.resolve(configured).normalize();
      } catch (InvalidPathException e) {
        s.problem("cache.dir", "'" + configured + "' is not a valid path: " + e.getReason());
      }
    }
    long maxSize = s.bytes("cache.max-size", 1);
    Duration lockTimeout = s.duration("cache.lock-timeout", Duration.ZERO, Duration.ofHours(24));
    boolean ready = s.bool("cache.ready-checkouts");
    return new CacheSettings(enabled, dir, maxSize, lockTimeout, ready);
  }

  private static List<String> schemes(StageSettings s, List<String> configured) {
    Set<String> schemes = new LinkedHashSet<>();
    for (String scheme : configured) {
      String lower = scheme.toLowerCase(Locale.ROOT);
      if (!UrlPolicy.SUPPORTED_SCHEMES.contains(lower)) {
        s.problem("allowed-schemes",
            "'" + scheme + "' is not supported; use some of " + UrlPolicy.SUPPORTED_SCHEMES);
      } else {
        schemes.add(lower);
      }
    }
    // A missing or mistyped list is a problem already; only a real empty one is reported here.
    if (configured.isEmpty()
        && s.problems().stream().noneMatch(p -> p.startsWith("allowed-schemes:"))) {
      s.problem("allowed-schemes", "is empty, so no repository could be cloned; use [https]");
    }
    return List.copyOf(schemes);
  }
}

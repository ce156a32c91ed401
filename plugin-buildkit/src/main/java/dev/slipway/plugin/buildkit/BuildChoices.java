package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.StageOptions;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * What one build builds, from the job's per-job options ({@code stage_options}, declared in {@link
 * #DECLARED}) falling back to the stage's configuration: the Dockerfile stage, the platform(s) and
 * whether the build cache is used.
 *
 * @param target the Dockerfile stage ({@code --target}); empty: the last stage
 * @param platform the platform or comma-separated platforms; empty: the builder's own
 * @param noCache build without the cache ({@code --no-cache})
 */
record BuildChoices(Optional<String> target, Optional<String> platform, boolean noCache) {

  /** A Dockerfile stage name; also what {@code worker.stages.buildkit.target} accepts. */
  static final Pattern TARGET = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}");

  static final String TARGET_EXPECTED =
      "a Dockerfile stage name: letters, digits, '_', '.' and '-', starting with a letter or digit,"
          + " at most 128 characters";

  private static final String ONE_PLATFORM = "[a-z0-9]{1,32}/[a-z0-9_]{1,32}(/[a-z0-9]{1,32})?";

  /** {@code os/arch[/variant]}, or several, comma-separated; also the configured {@code platform}'s. */
  static final Pattern PLATFORM = Pattern.compile(ONE_PLATFORM + "(," + ONE_PLATFORM + "){0,15}");

  static final String PLATFORM_EXPECTED =
      "a platform os/arch[/variant] such as 'linux/amd64' or 'linux/arm64/v8', or a comma-separated"
          + " list of them such as 'linux/amd64,linux/arm64'";

  static final StageOption TARGET_OPTION =
      StageOption.string("target", "the configured target (empty: the Dockerfile's last stage)",
              "the Dockerfile stage to build, --target")
          .matching(TARGET, TARGET_EXPECTED);

  static final StageOption PLATFORM_OPTION =
      StageOption.string("platform", "the configured platform (empty: the builder's own)",
              "the platform to build for, --platform; a list needs backend = buildctl")
          .matching(PLATFORM, PLATFORM_EXPECTED);

  static final StageOption NO_CACHE_OPTION =
      StageOption.bool("no-cache", "false",
          "true: build without BuildKit's cache (--no-cache), every step runs again");

  /** The options a job may set for this stage, as the factory declares them. */
  static final List<StageOption> DECLARED = List.of(TARGET_OPTION, PLATFORM_OPTION, NO_CACHE_OPTION);

  /**
   * Checks the job's options against their declarations and the backend, and picks what the build
   * uses. The runtime checks names and types at admission already; this is the stage's own word,
   * also where no runtime checks (tests, other hosts).
   *
   * @throws StageException {@link BuildkitErrors#INVALID_REQUEST} naming the option and what would
   *     be right
   */
  static BuildChoices of(BuildkitSettings settings, StageOptions options) throws StageException {
    for (StageOption option : DECLARED) {
      Optional<String> value = options.string(option.name());
      Optional<String> refusal = value.flatMap(option::refusal);
      if (refusal.isPresent()) {
        throw new StageException(BuildkitErrors.INVALID_REQUEST,
            "stage_options buildkit." + option.name() + ": " + refusal.get());
      }
    }
    Optional<String> platform = options.string(PLATFORM_OPTION.name()).or(settings::platform);
    if (platform.isPresent() && platform.get().contains(",")
        && settings.backend() == BuildkitSettings.Backend.DOCKER) {
      throw new StageException(BuildkitErrors.INVALID_REQUEST,
          "stage_options buildkit.platform: '" + platform.get() + "' is a list, and this worker builds"
              + " with the docker backend, which builds one platform at a time; give one platform such"
              + " as 'linux/amd64'");
    }
    return new BuildChoices(
        options.string(TARGET_OPTION.name()).or(settings::target),
        platform,
        options.bool(NO_CACHE_OPTION.name()).orElse(false));
  }
}

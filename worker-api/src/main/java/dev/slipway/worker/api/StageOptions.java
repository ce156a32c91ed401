package dev.slipway.worker.api;

import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The per-job options a stage was given, by option name without the stage's prefix: only the
 * options this stage {@linkplain StageFactory#options() declared}, each already checked against
 * its declaration. An option the job did not set is absent: the stage then does what its
 * configuration says.
 *
 * @since 0.3
 */
public final class StageOptions {
  private static final StageOptions NONE = new StageOptions(Map.of());

  private final Map<String, String> values;

  private StageOptions(Map<String, String> values) {
    this.values = values;
  }

  /** No options set. */
  public static StageOptions none() {
    return NONE;
  }

  /**
   * Options with these values, by name. The runtime checks them against the declarations before
   * it calls this; tests of a stage call it directly.
   */
  public static StageOptions of(Map<String, String> values) {
    return values.isEmpty() ? NONE : new StageOptions(
        java.util.Collections.unmodifiableMap(new TreeMap<>(values)));
  }

  /** The value as given, if the job set the option. */
  public Optional<String> string(String name) {
    return Optional.ofNullable(values.get(name));
  }

  /** The value of a {@link StageOption.Type#BOOLEAN} option, if the job set it. */
  public Optional<Boolean> bool(String name) {
    return string(name).map(Boolean::parseBoolean);
  }

  /** The value of a {@link StageOption.Type#INTEGER} option, if the job set it. */
  public Optional<Long> integer(String name) {
    return string(name).map(Long::parseLong);
  }

  /** Every option the job set, by name. */
  public Map<String, String> asMap() {
    return values;
  }

  /** The names set; never the values, which may be secret. */
  @Override
  public String toString() {
    return "StageOptions" + values.keySet();
  }
}

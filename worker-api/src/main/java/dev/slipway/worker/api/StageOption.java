package dev.slipway.worker.api;

import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A per-job option that a stage declares in {@link StageFactory#options()}. A caller sets it in
 * {@code JobRequest.stage_options} as {@code "<stage-id>.<name>" -> value}; the runtime checks
 * the value against this declaration when the job is admitted (an unknown option or a value of the
 * wrong type is refused with {@code INVALID_ARGUMENT}), masks it everywhere when it is {@linkplain
 * #secret() secret}, and hands each stage only its own options, through {@link
 * JobContext#options()}.
 *
 * @since 0.3
 */
public final class StageOption {
  private static final Pattern NAME = Pattern.compile("[a-z][a-z0-9-]{0,62}");

  /** What values an option takes. */
  public enum Type {
    /** Any text, or the text a {@linkplain #matching pattern} allows. */
    STRING,
    /** {@code true} or {@code false}. */
    BOOLEAN,
    /** A whole number between the option's bounds. */
    INTEGER
  }

  private final String name;
  private final Type type;
  private final String defaultValue;
  private final String description;
  private final boolean secret;
  private final Pattern pattern;
  private final String expected;
  private final long min;
  private final long max;

  private StageOption(String name, Type type, String defaultValue, String description,
      boolean secret, Pattern pattern, String expected, long min, long max) {
    if (!NAME.matcher(Objects.requireNonNull(name, "name")).matches()) {
      throw new IllegalArgumentException(
          "option name '" + name + "' must be lower case letters, digits and dashes, from a letter");
    }
    this.name = name;
    this.type = type;
    this.defaultValue = Objects.requireNonNull(defaultValue, "defaultValue");
    this.description = Objects.requireNonNull(description, "description");
    this.secret = secret;
    this.pattern = pattern;
    this.expected = expected;
    this.min = min;
    this.max = max;
  }

  /**
   * A text option.
   *
   * @param defaultValue what the stage does without it, for people (e.g. {@code "the
   *     configured target"})
   */
  public static StageOption string(String name, String defaultValue, String description) {
    return new StageOption(name, Type.STRING, defaultValue, description, false, null, null, 0, 0);
  }

  /** A {@code true}/{@code false} option. */
  public static StageOption bool(String name, String defaultValue, String description) {
    return new StageOption(name, Type.BOOLEAN, defaultValue, description, false, null, null, 0, 0);
  }

  /** A whole-number option from {@code min} to {@code max}. */
  public static StageOption integer(String name, long min, long max, String defaultValue,
      String description) {
    if (min > max) {
      throw new IllegalArgumentException("min " + min + " is more than max " + max);
    }
    return new StageOption(name, Type.INTEGER, defaultValue, description, false, null, null, min,
        max);
  }

  /**
   * This text option, allowing only values that match {@code pattern} as a whole.
   *
   * @param expected what a right value looks like, for the refusal (e.g. {@code "os/arch such
   *     as linux/amd64"})
   */
  public StageOption matching(Pattern pattern, String expected) {
    if (type != Type.STRING) {
      throw new IllegalStateException("only a string option takes a pattern");
    }
    return new StageOption(name, type, defaultValue, description, secret,
        Objects.requireNonNull(pattern, "pattern"), Objects.requireNonNull(expected, "expected"),
        min, max);
  }

  /** This option, with its values masked in every log line and event, and never listed. */
  public StageOption secret() {
    return new StageOption(name, type, defaultValue, description, true, pattern, expected, min,
        max);
  }

  public String name() {
    return name;
  }

  public Type type() {
    return type;
  }

  /** What the stage does when a job does not set the option, for people. */
  public String defaultValue() {
    return defaultValue;
  }

  public String description() {
    return description;
  }

  public boolean isSecret() {
    return secret;
  }

  /** What a right value looks like, for messages and {@code worker plugins}. */
  public String expected() {
    return switch (type) {
      case BOOLEAN -> "true or false";
      case INTEGER -> "a whole number from " + min + " to " + max;
      case STRING -> expected != null ? expected : "text";
    };
  }

  /**
   * Why {@code value} is not a right value of this option, or empty when it is. Never repeats a
   * secret option's value.
   */
  public Optional<String> refusal(String value) {
    Objects.requireNonNull(value, "value");
    String shown = secret ? "the value" : "'" + value + "'";
    boolean right = switch (type) {
      case BOOLEAN -> value.equals("true") || value.equals("false");
      case INTEGER -> integerIn(value);
      case STRING -> pattern == null || pattern.matcher(value).matches();
    };
    return right ? Optional.empty() : Optional.of(shown + " is not " + expected());
  }

  private boolean integerIn(String value) {
    if (!value.matches("-?[0-9]{1,18}")) {
      return false;
    }
    long n = Long.parseLong(value);
    return n >= min && n <= max;
  }

  @Override
  public String toString() {
    return name + " (" + type.name().toLowerCase(Locale.ROOT) + (secret ? ", secret" : "") + ")";
  }
}

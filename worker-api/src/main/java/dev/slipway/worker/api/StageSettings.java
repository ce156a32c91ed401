package dev.slipway.worker.api;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Reads a stage's configuration block and gathers every problem instead of stopping at the first,
 * so that {@link StageFactory#create} can report them all at once with {@link #throwIfAny()}.
 *
 * <p>Each reader method returns a stand-in (zero, empty, the fallback) after recording a problem:
 * read every key, then call {@link #throwIfAny()} before using what was read. Problems name the
 * key relative to the block (the runtime prefixes {@code worker.stages.<id>.}) and say what would
 * be right. The runtime itself has already refused keys the plugin's {@code reference.conf} does
 * not have, and checked {@code timeout}, which it owns.
 *
 * @since 0.3
 */
public final class StageSettings {
  private final Config config;
  private final Path home;
  private final List<String> problems = new ArrayList<>();

  /**
   * @param config the stage's block, as {@link StageFactory#create} gets it
   * @param home where relative paths resolve, usually {@link WorkerEnvironment#home()}
   */
  public StageSettings(Config config, Path home) {
    this.config = config;
    this.home = home;
  }

  /** The block being read. */
  public Config config() {
    return config;
  }

  /** Records a problem with {@code key}: {@code message} says what is wrong and what is right. */
  public void problem(String key, String message) {
    problems.add(key + ": " + message);
  }

  /** Every problem recorded so far. */
  public List<String> problems() {
    return List.copyOf(problems);
  }

  /** Throws every problem recorded, if there is any. */
  public void throwIfAny() throws StageConfigException {
    if (!problems.isEmpty()) {
      throw new StageConfigException(problems);
    }
  }

  /**
   * The value of {@code key} read with {@code getter}; {@code fallback} (and a problem) when it
   * is missing or of the wrong type. Typesafe's own message names the file and line.
   */
  public <T> T read(String key, Function<String, T> getter, T fallback) {
    return read(key, getter, fallback, "");
  }

  /**
   * As {@link #read(String, Function, Object)}; a value of the wrong type is told what was
   * expected, e.g. {@code "a duration such as 30s"}.
   */
  public <T> T read(String key, Function<String, T> getter, T fallback, String expected) {
    try {
      return getter.apply(key);
    } catch (ConfigException.Missing e) {
      problem(key, "is missing; the plugin's reference.conf should set it");
    } catch (ConfigException e) {
      problem(key, (expected.isEmpty() ? "" : "expected " + expected + " (") + e.getMessage()
          + (expected.isEmpty() ? "" : ")"));
    }
    return fallback;
  }

  /** A string, without the white space around it. */
  public String string(String key) {
    return read(key, config::getString, "").strip();
  }

  /** A string; empty when it is blank. */
  public Optional<String> optionalString(String key) {
    String value = string(key);
    return value.isEmpty() ? Optional.empty() : Optional.of(value);
  }

  /** A string that, when set, must match {@code pattern}; {@code expected} says what would. */
  public Optional<String> optionalMatching(String key, Pattern pattern, String expected) {
    Optional<String> value = optionalString(key);
    if (value.isPresent() && !pattern.matcher(value.get()).matches()) {
      problem(key, "'" + value.get() + "' is not " + expected);
      return Optional.empty();
    }
    return value;
  }

  public boolean bool(String key) {
    return read(key, config::getBoolean, false, "true or false");
  }

  /** A whole number from {@code min} to {@code max}. */
  public int integer(String key, int min, int max) {
    int value = read(key, config::getInt, min, "a whole number from " + min + " to " + max);
    if (value < min || value > max) {
      problem(key, value + " is not allowed; use " + min + " to " + max);
      return min;
    }
    return value;
  }

  /** A number from {@code min} (excluded when {@code minExcluded}) to {@code max}. */
  public double number(String key, double min, boolean minExcluded, double max) {
    double value = read(key, config::getDouble, max, "a number such as " + max);
    if (!(minExcluded ? value > min : value >= min) || !(value <= max) || Double.isNaN(value)) {
      problem(key, value + " is not allowed; use a number " + (minExcluded ? "above " : "from ")
          + min + " to " + max);
      return max;
    }
    return value;
  }

  /** A size in bytes ({@code 2GiB}), at least {@code least}. */
  public long bytes(String key, long least) {
    long value = read(key, config::getBytes, least, "a size such as 2GiB or 512MiB");
    if (value < least) {
      problem(key, value + " bytes is not allowed; use at least " + least + " bytes, e.g. 2GiB");
      return least;
    }
    return value;
  }

  /** A duration ({@code 30s}) from {@code least} to {@code most}. */
  public Duration duration(String key, Duration least, Duration most) {
    Duration value = read(key, config::getDuration, least,
        "a duration such as 500ms, 30s or 10m");
    if (value.compareTo(least) < 0 || value.compareTo(most) > 0) {
      problem(key, human(value) + " is not allowed; use at least " + human(least)
          + (most.compareTo(Duration.ofDays(3650)) < 0 ? " and at most " + human(most) : ""));
      return least;
    }
    return value;
  }

  /** A duration of at least {@code least}. */
  public Duration duration(String key, Duration least) {
    return duration(key, least, Duration.ofDays(365_000));
  }

  /** A list of strings, each without the white space around it. */
  public List<String> stringList(String key) {
    return read(key, config::getStringList, List.<String>of(), "a list of strings such as"
        + " [\"a\", \"b\"]").stream().map(String::strip)
        .collect(Collectors.toList());
  }

  /** One of {@code type}'s constants, by name in any case. */
  public <E extends Enum<E>> E oneOf(String key, Class<E> type, E fallback) {
    String value = read(key, config::getString, fallback.name()).strip();
    for (E constant : type.getEnumConstants()) {
      if (constant.name().replace('_', '-').equalsIgnoreCase(value)) {
        return constant;
      }
    }
    problem(key, "'" + value + "' is not one of " + Arrays.stream(type.getEnumConstants())
        .map(c -> c.name().replace('_', '-').toLowerCase(Locale.ROOT))
        .collect(Collectors.joining(", ", "[", "]")));
    return fallback;
  }

  /** Whether {@code key} is an object {@code { ... }}; a problem when it is anything else. */
  public boolean isObject(String key) {
    if (!config.hasPath(key)) {
      return false;
    }
    ConfigValue value = config.getValue(key);
    if (value.valueType() != ConfigValueType.OBJECT) {
      problem(key, "must be an object { ... }, got "
          + value.valueType().name().toLowerCase(Locale.ROOT) + " ("
          + value.origin().description() + ")");
      return false;
    }
    return true;
  }

  /**
   * The entries of an object of strings ({@code labels { a.b = x }}), in file order, names
   * joined with dots whether they were quoted or not.
   */
  public Map<String, String> stringMap(String key) {
    if (!isObject(key)) {
      return Map.of();
    }
    Map<String, String> entries = new LinkedHashMap<>();
    for (var entry : config.getConfig(key).entrySet()) {
      String name = String.join(".", ConfigUtil.splitPath(entry.getKey()));
      ConfigValueType type = entry.getValue().valueType();
      if (type == ConfigValueType.OBJECT || type == ConfigValueType.LIST
          || type == ConfigValueType.NULL) {
        problem(key + "." + name, "must be a string");
        continue;
      }
      entries.put(name, String.valueOf(entry.getValue().unwrapped()));
    }
    return entries;
  }

  /** {@code value} as a path; relative ones resolve against the worker's home. */
  public Optional<Path> path(String key, String value) {
    try {
      Path path = Path.of(value);
      return Optional.of((path.isAbsolute() ? path : home.resolve(path)).normalize());
    } catch (InvalidPathException e) {
      problem(key, "'" + value + "' is not a valid path: " + e.getReason());
      return Optional.empty();
    }
  }

  /** The path of an executable file, which must be set and exist. */
  public Optional<Path> executable(String key) {
    Optional<String> value = optionalString(key);
    if (value.isEmpty()) {
      problem(key, "is empty; give the path of the program");
      return Optional.empty();
    }
    Optional<Path> path = path(key, value.get());
    path.filter(p -> !(Files.isRegularFile(p) && Files.isExecutable(p))).ifPresent(p ->
        problem(key, p + (Files.exists(p) ? " is not an executable file" : " does not exist")
            + (value.get().equals(p.toString()) ? ""
                : " (resolved against the worker's home " + home + ")")));
    return path;
  }

  /** The path of a readable file when the key is set; empty when it is blank. */
  public Optional<Path> optionalReadableFile(String key) {
    Optional<String> value = optionalString(key);
    if (value.isEmpty()) {
      return Optional.empty();
    }
    Optional<Path> path = path(key, value.get());
    path.filter(p -> !(Files.isRegularFile(p) && Files.isReadable(p))).ifPresent(p ->
        problem(key, p + (Files.exists(p) ? " is not a readable file" : " does not exist")));
    return path;
  }

  /** A duration as people write it in HOCON: {@code 500ms}, {@code 30s}, {@code 2m}. */
  public static String human(Duration d) {
    if (d.toMillis() % 1000 != 0 || d.isZero()) {
      return d.toMillis() + "ms";
    }
    long s = d.toSeconds();
    return s % 3600 == 0 ? (s / 3600) + "h" : s % 60 == 0 ? (s / 60) + "m" : s + "s";
  }
}

package dev.slipway.worker.api;

import java.util.Objects;

/**
 * A typed name for a value that one stage publishes and later stages read. Keys compare by
 * identity, like {@code io.grpc.Attributes.Key}: two plugins share a value only by sharing the key
 * object, and the shared ones live in {@link StageKeys} so that plugins never depend on each other.
 *
 * @param <T> the type of the value
 */
public final class StageKey<T> {
  private final String name;
  private final Class<T> type;

  private StageKey(String name, Class<T> type) {
    this.name = Objects.requireNonNull(name, "name");
    this.type = Objects.requireNonNull(type, "type");
  }

  /**
   * Creates a key. Plugins that hand values only among their own stages may create their own keys.
   *
   * @param name a descriptive name, shown in error messages
   * @param type the value's type; published values are checked against it
   */
  public static <T> StageKey<T> of(String name, Class<T> type) {
    return new StageKey<>(name, type);
  }

  public String name() {
    return name;
  }

  public Class<T> type() {
    return type;
  }

  @Override
  public String toString() {
    return name + ":" + type.getSimpleName();
  }
}

package dev.slipway.worker.api;

import java.util.List;

/**
 * A stage's configuration cannot work. Carries every problem found, each naming the key and saying
 * what would be right, e.g. {@code "backend: 'dockr' is not one of [docker, buildctl]"}.
 */
public class StageConfigException extends Exception {
  private static final long serialVersionUID = 1L;

  private final List<String> problems;

  public StageConfigException(List<String> problems) {
    super(String.join("; ", problems));
    if (problems.isEmpty()) {
      throw new IllegalArgumentException("at least one problem");
    }
    this.problems = List.copyOf(problems);
  }

  public StageConfigException(String problem) {
    this(List.of(problem));
  }

  /** Every problem, one sentence each. */
  public List<String> problems() {
    return problems;
  }
}

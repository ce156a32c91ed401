package dev.slipway.worker.runtime.config;

import java.util.List;

/** The worker cannot start; carries every problem found, each one a full sentence. */
public final class StartupException extends Exception {
  private static final long serialVersionUID = 1L;
  private final List<String> problems;

  public StartupException(String summary, List<String> problems) {
    super(summary + ":\n  - " + String.join("\n  - ", problems));
    this.problems = List.copyOf(problems);
  }

  public List<String> problems() {
    return problems;
  }
}

package dev.slipway.worker.runtime.config;

import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigOrigin;
import java.util.ArrayList;
import java.util.List;

/** Collects every configuration problem, so start-up reports them all at once. */
public final class ConfigProblems {
  private final List<String> problems = new ArrayList<>();

  public void add(String problem) {
    problems.add(problem);
  }

  /** Adds a typesafe-config exception, naming the key and where its value came from. */
  public void add(ConfigException e) {
    problems.add(describe(e));
  }

  public void addAll(List<String> more) {
    problems.addAll(more);
  }

  public boolean isEmpty() {
    return problems.isEmpty();
  }

  public List<String> asList() {
    return List.copyOf(problems);
  }

  /** Throws a {@link StartupException} listing every problem, if there is any. */
  public void throwIfAny(String summary) throws StartupException {
    if (!problems.isEmpty()) {
      throw new StartupException(summary, problems);
    }
  }

  /**
   * typesafe-config's messages already name the origin ("file.conf: 12: worker.port has type
   * STRING rather than NUMBER"); add the origin when the exception has one and its text lacks it.
   */
  static String describe(ConfigException e) {
    String message = e.getMessage();
    ConfigOrigin origin = e.origin();
    if (origin != null && !message.contains(origin.description())) {
      return origin.description() + ": " + message;
    }
    return message;
  }
}

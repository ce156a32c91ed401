package dev.slipway.worker.runtime.config;

import io.github.cdimascio.dotenv.Dotenv;
import io.github.cdimascio.dotenv.DotenvEntry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The environment variables the worker sees: those of a {@code .env} file in the working directory,
 * overridden by the real process environment, as the original worker did.
 */
public final class Environment {
  private final Map<String, String> variables;

  private Environment(Map<String, String> variables) {
    this.variables = Map.copyOf(variables);
  }

  /** The process environment over the {@code .env} file of {@code workingDirectory}, if any. */
  public static Environment load(Path workingDirectory) {
    Map<String, String> merged = new HashMap<>();
    if (Files.isRegularFile(workingDirectory.resolve(".env"))) {
      Dotenv dotenv =
          Dotenv.configure().directory(workingDirectory.toString()).ignoreIfMalformed().load();
      for (DotenvEntry entry : dotenv.entries(Dotenv.Filter.DECLARED_IN_ENV_FILE)) {
        merged.put(entry.getKey(), entry.getValue());
      }
    }
    merged.putAll(System.getenv());
    return new Environment(merged);
  }

  /** Exactly these variables; for tests and embedding. */
  public static Environment of(Map<String, String> variables) {
    return new Environment(variables);
  }

  public Optional<String> get(String name) {
    return Optional.ofNullable(variables.get(name)).filter(v -> !v.isBlank());
  }

  public Map<String, String> asMap() {
    return variables;
  }
}

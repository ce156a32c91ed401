package dev.slipway.worker.testkit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads the {@code env} file that {@code scripts/test-services.sh up} writes: lines of
 * {@code export NAME=value}, values quoted by bash's {@code printf %q} or plain quotes.
 */
final class ServicesEnvFile {
  private ServicesEnvFile() {}

  /** The variables of the file; empty when it is missing or unreadable (the probe then says so). */
  static Map<String, String> read(Path file) {
    Map<String, String> values = new LinkedHashMap<>();
    if (!Files.isReadable(file)) {
      return values;
    }
    try {
      for (String raw : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        String line = raw.strip();
        if (line.isEmpty() || line.startsWith("#")) {
          continue;
        }
        if (line.startsWith("export ")) {
          line = line.substring("export ".length()).strip();
        }
        int eq = line.indexOf('=');
        if (eq > 0) {
          values.put(line.substring(0, eq), unquote(line.substring(eq + 1)));
        }
      }
    } catch (IOException e) {
      return values;
    }
    return values;
  }

  /** Undoes bash's {@code printf %q} (backslashes) and plain single or double quotes. */
  static String unquote(String value) {
    if (value.length() >= 2
        && (value.startsWith("'") && value.endsWith("'")
            || value.startsWith("\"") && value.endsWith("\""))) {
      return value.substring(1, value.length() - 1);
    }
    StringBuilder out = new StringBuilder(value.length());
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c == '\\' && i + 1 < value.length()) {
        out.append(value.charAt(++i));
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }
}

package dev.slipway.plugin.buildkit;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;

/**
 * Keeps the last lines of a process's output, for the message of a failed build. Bytes are cut
 * into lines at {@code \n} or {@code \r} and decoded as UTF-8; very long lines are cut short.
 */
final class OutputTail extends OutputStream {
  private static final int MAX_LINE_BYTES = 4096;

  private final int maxLines;
  private final Deque<String> lines = new ArrayDeque<>();
  private final ByteArrayOutputStream current = new ByteArrayOutputStream();
  private boolean truncated;

  OutputTail(int maxLines) {
    this.maxLines = maxLines;
  }

  @Override
  public synchronized void write(int b) {
    if (b == '\n' || b == '\r') {
      endLine();
    } else if (current.size() < MAX_LINE_BYTES) {
      current.write(b);
    } else {
      truncated = true;
    }
  }

  @Override
  public synchronized void write(byte[] b, int off, int len) {
    for (int i = off; i < off + len; i++) {
      write(b[i]);
    }
  }

  private void endLine() {
    if (current.size() == 0 && !truncated) {
      return; // \r\n, or an empty line: nothing worth keeping
    }
    String line = current.toString(StandardCharsets.UTF_8) + (truncated ? " [...]" : "");
    current.reset();
    truncated = false;
    lines.addLast(line);
    while (lines.size() > maxLines) {
      lines.removeFirst();
    }
  }

  /** The last lines, oldest first, including an unterminated last line. */
  synchronized List<String> lines() {
    if (current.size() > 0) {
      endLine();
    }
    return List.copyOf(lines);
  }
}

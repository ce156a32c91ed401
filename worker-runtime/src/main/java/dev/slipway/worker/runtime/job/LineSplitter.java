package dev.slipway.worker.runtime.job;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * An output stream that cuts bytes into lines at {@code \n} or {@code \r} and hands each complete
 * line on. Masking whole lines, not write chunks, is what keeps a secret split across two writes
 * from slipping through.
 */
final class LineSplitter extends OutputStream {
  /** A line longer than this is handed on in pieces, so a runaway process cannot exhaust memory. */
  private static final int MAX_LINE = 64 * 1024;

  private final Consumer<String> sink;
  private final ByteArrayOutputStream buffer = new ByteArrayOutputStream(256);
  private boolean lastWasCr;

  LineSplitter(Consumer<String> sink) {
    this.sink = sink;
  }

  @Override
  public synchronized void write(int b) {
    if (b == '\n' || b == '\r') {
      // \r\n is one line end; a lone \r (progress bars) ends a line too.
      if (!(b == '\n' && lastWasCr)) {
        emit();
      }
      lastWasCr = b == '\r';
      return;
    }
    lastWasCr = false;
    buffer.write(b);
    if (buffer.size() >= MAX_LINE) {
      emit();
    }
  }

  @Override
  public synchronized void write(byte[] bytes, int offset, int length) {
    for (int i = offset; i < offset + length; i++) {
      write(bytes[i]);
    }
  }

  @Override
  public synchronized void close() {
    if (buffer.size() > 0) {
      emit();
    }
  }

  private void emit() {
    String line = buffer.toString(StandardCharsets.UTF_8);
    buffer.reset();
    sink.accept(line);
  }
}

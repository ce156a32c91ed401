package dev.slipway.worker.runtime.job;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * An output stream that cuts bytes into lines at {@code \n} or {@code \r} and hands each complete
 * line on, masked. Masking whole lines, not write chunks, is what keeps a secret split across two
 * writes from slipping through.
 */
final class LineSplitter extends OutputStream {
  /** Bytes kept of one line; the rest of a longer line is dropped, so output cannot exhaust memory. */
  static final int MAX_LINE = 64 * 1024;
  /**
   * Characters dropped from the end of a line that was cut, after masking: a secret that
   * straddled the cut left only a fragment there, which masking cannot recognise. Secrets are far
   * shorter than this.
   */
  static final int CUT_MARGIN = 8 * 1024;

  private final UnaryOperator<String> mask;
  private final Consumer<String> sink;
  private final ByteArrayOutputStream buffer = new ByteArrayOutputStream(256);
  private long dropped;
  private boolean lastWasCr;

  LineSplitter(UnaryOperator<String> mask, Consumer<String> sink) {
    this.mask = mask;
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
    if (buffer.size() < MAX_LINE) {
      buffer.write(b);
    } else {
      dropped++;
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
    String line = mask.apply(buffer.toString(StandardCharsets.UTF_8));
    if (dropped > 0) {
      line = line.substring(0, Math.max(0, line.length() - CUT_MARGIN))
          + " [line cut: " + (dropped + CUT_MARGIN) + "+ more bytes]";
    }
    buffer.reset();
    dropped = 0;
    sink.accept(line);
  }
}

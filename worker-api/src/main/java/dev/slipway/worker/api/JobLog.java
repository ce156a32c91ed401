package dev.slipway.worker.api;

import java.io.OutputStream;

/**
 * A job's log. Every line goes to the caller as an event (for {@code StreamJob}) and to the
 * worker's own log, tagged with the job id and the stage, after every known secret is masked.
 * Throttling progress output to a few lines a second is the stage's business.
 */
public interface JobLog {

  /** Logs one line; line breaks inside it split it into several lines. */
  void line(String line);

  /**
   * A stream for a child process's output: bytes are decoded as UTF-8 and cut into lines at
   * {@code \n} or {@code \r}, so a secret split across two writes is still masked. Closing it
   * flushes a last unterminated line. Each call returns a new stream.
   */
  OutputStream lineStream();
}

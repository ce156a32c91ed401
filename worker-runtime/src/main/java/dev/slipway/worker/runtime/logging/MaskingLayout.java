package dev.slipway.worker.runtime.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Layout;
import ch.qos.logback.core.LayoutBase;

/**
 * Wraps another layout and masks every secret in what it writes (message, MDC and stack trace),
 * then makes the line safe for a terminal: control characters (ANSI escapes, carriage returns,
 * DEL, C1) become visible escapes, so build output cannot rewrite an operator's screen or forge
 * log lines.
 */
final class MaskingLayout extends LayoutBase<ILoggingEvent> {
  private final Layout<ILoggingEvent> delegate;

  MaskingLayout(Layout<ILoggingEvent> delegate) {
    this.delegate = delegate;
  }

  @Override
  public String doLayout(ILoggingEvent event) {
    String line = LogMasking.mask(delegate.doLayout(event),
        event.getMDCPropertyMap().get(Logging.JOB_ID));
    return TerminalText.escapeControls(line, true);
  }

  @Override
  public void start() {
    delegate.start();
    super.start();
  }

  @Override
  public void stop() {
    delegate.stop();
    super.stop();
  }
}

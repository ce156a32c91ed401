package dev.slipway.worker.runtime.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Layout;
import ch.qos.logback.core.LayoutBase;

/** Wraps another layout and masks every secret in what it writes: message, MDC and stack trace. */
final class MaskingLayout extends LayoutBase<ILoggingEvent> {
  private final Layout<ILoggingEvent> delegate;

  MaskingLayout(Layout<ILoggingEvent> delegate) {
    this.delegate = delegate;
  }

  @Override
  public String doLayout(ILoggingEvent event) {
    return LogMasking.mask(delegate.doLayout(event));
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

package dev.slipway.worker.runtime.logging;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.PatternLayout;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Layout;
import ch.qos.logback.core.OutputStreamAppender;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.slf4j.LoggerFactory;

/**
 * Configures logback in code rather than from a logback.xml, so that the format follows
 * {@code worker.log.format} and every line is masked: text by {@link MaskingLayout}, JSON field
 * by field in {@link JsonLayout}, before escaping.
 */
public final class Logging {
  /** MDC key carrying the job id on every line logged while a job runs. */
  public static final String JOB_ID = "job_id";
  /** MDC key carrying the running stage's id. */
  public static final String STAGE = "stage";
  /** MDC key carrying the name of the caller that started the job: who ran what. */
  public static final String CALLER = "caller";

  private static final String TEXT_PATTERN =
      "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level [%thread] %logger{24}"
          + "%replace( job=%X{job_id}){' job=$', ''}%replace( caller=%X{caller}){' caller=$', ''}"
          + "%replace( stage=%X{stage}){' stage=$', ''}"
          + " - %msg%n%ex";

  private Logging() {}

  /** Sends every log line to standard error in the given format ({@code text} or {@code json}). */
  public static synchronized void configure(String format, String level) {
    configure(format, level, System.err);
  }

  /** Sends every log line to {@code out}; tests use it to read what the worker logs. */
  public static synchronized void configure(String format, String level, OutputStream out) {
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    context.reset();
    Layout<ILoggingEvent> layout;
    if ("json".equals(format)) {
      // Masks each field itself, before escaping.
      layout = new JsonLayout();
    } else {
      PatternLayout pattern = new PatternLayout();
      pattern.setPattern(TEXT_PATTERN);
      pattern.setContext(context);
      layout = new MaskingLayout(pattern);
    }
    layout.setContext(context);
    layout.start();

    LayoutWrappingEncoder<ILoggingEvent> encoder = new LayoutWrappingEncoder<>();
    encoder.setContext(context);
    encoder.setLayout(layout);
    encoder.setCharset(StandardCharsets.UTF_8);
    encoder.start();

    OutputStreamAppender<ILoggingEvent> appender = new OutputStreamAppender<>();
    appender.setContext(context);
    appender.setName("main");
    appender.setEncoder(encoder);
    // The appender closes its stream when logging is reconfigured; System.err must survive that.
    appender.setOutputStream(new FilterOutputStream(out) {
      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
      }

      @Override
      public void close() throws IOException {
        flush();
      }
    });
    appender.setImmediateFlush(true);
    appender.start();

    Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    root.setLevel(Level.toLevel(level, Level.INFO));
    root.addAppender(appender);
    // grpc-netty is chatty at DEBUG about every connection; keep it to warnings.
    context.getLogger("io.grpc.netty").setLevel(Level.WARN);
    // httpclient5 (docker-java's transport) logs request headers and bodies at DEBUG, among them
    // X-Registry-Auth: registry credentials in an encoded JSON form. Never at any root level.
    context.getLogger("org.apache.hc.client5.http.wire").setLevel(Level.INFO);
    context.getLogger("org.apache.hc.client5.http.headers").setLevel(Level.INFO);
  }
}

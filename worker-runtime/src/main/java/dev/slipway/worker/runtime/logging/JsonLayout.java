package dev.slipway.worker.runtime.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.LayoutBase;
import java.time.Instant;
import java.util.Map;

/** One JSON object per line: time, level, logger, thread, message, MDC fields, stack trace. */
final class JsonLayout extends LayoutBase<ILoggingEvent> {
  @Override
  public String doLayout(ILoggingEvent event) {
    StringBuilder json = new StringBuilder(256).append('{');
    String job = event.getMDCPropertyMap().get(Logging.JOB_ID);
    field(json, "time", Instant.ofEpochMilli(event.getTimeStamp()).toString(), job).append(',');
    field(json, "level", event.getLevel().toString(), job).append(',');
    field(json, "logger", event.getLoggerName(), job).append(',');
    field(json, "thread", event.getThreadName(), job).append(',');
    field(json, "message", event.getFormattedMessage(), job);
    for (Map.Entry<String, String> e : event.getMDCPropertyMap().entrySet()) {
      json.append(',');
      field(json, e.getKey(), e.getValue(), job);
    }
    IThrowableProxy thrown = event.getThrowableProxy();
    if (thrown != null) {
      json.append(',');
      field(json, "stack_trace", ThrowableProxyUtil.asString(thrown), job);
    }
    return json.append("}\n").toString();
  }

  private static StringBuilder field(StringBuilder json, String name, String value,
      String job) {
    quote(json, name).append(':');
    // Masked before escaping: escaping a quote or backslash inside a secret would hide it from
    // the masking of the finished line.
    return quote(json, value == null ? "" : LogMasking.mask(value, job));
  }

  private static StringBuilder quote(StringBuilder json, String s) {
    json.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> json.append("\\\"");
        case '\\' -> json.append("\\\\");
        case '\n' -> json.append("\\n");
        case '\r' -> json.append("\\r");
        case '\t' -> json.append("\\t");
        default -> {
          // Control characters, DEL and C1 included: nothing a terminal would act on.
          if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
            json.append(String.format("\\u%04x", (int) c));
          } else {
            json.append(c);
          }
        }
      }
    }
    return json.append('"');
  }
}

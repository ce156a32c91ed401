package dev.slipway.worker.runtime.logging;

/** Text that is safe to print on a terminal. */
public final class TerminalText {
  private TerminalText() {}

  /**
   * Replaces control characters (C0 but tab, DEL, C1) with visible escapes: ESC becomes
   * {@code \x1b}, so an ANSI sequence shows as text instead of acting.
   *
   * @param keepNewlines whether {@code \n} stays (a multi-line stack trace), else it is escaped
   */
  public static String escapeControls(String text, boolean keepNewlines) {
    StringBuilder out = null;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      boolean control = (c < 0x20 && c != '\t' && !(keepNewlines && c == '\n'))
          || (c >= 0x7f && c <= 0x9f);
      if (control) {
        if (out == null) {
          out = new StringBuilder(text.length() + 16).append(text, 0, i);
        }
        out.append(String.format("\\x%02x", (int) c));
      } else if (out != null) {
        out.append(c);
      }
    }
    return out == null ? text : out.toString();
  }
}

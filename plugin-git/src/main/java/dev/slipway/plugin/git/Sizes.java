package dev.slipway.plugin.git;

import java.util.Locale;

/** Byte counts for people, in the binary units HOCON sizes use: {@code 2 GiB}, {@code 3.4 MiB}. */
public final class Sizes {
  private static final String[] UNITS = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

  private Sizes() {}

  /**
   * {@code bytes} in the largest unit it reaches: exactly when it is a whole number of that unit
   * ({@code 1 MiB}, as a configured limit usually is), else to one decimal ({@code 3.0 MiB}).
   */
  public static String format(long bytes) {
    if (bytes < 1024) {
      return bytes + (bytes == 1 ? " byte" : " bytes");
    }
    int unit = 0;
    long scale = 1024;
    while (unit + 1 < UNITS.length && bytes / scale >= 1024) {
      scale *= 1024;
      unit++;
    }
    if (bytes % scale == 0) {
      return bytes / scale + " " + UNITS[unit];
    }
    return String.format(Locale.ROOT, "%.1f %s", (double) bytes / scale, UNITS[unit]);
  }
}

package dev.slipway.plugin.git;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class SizesTest {

  @Test
  void wholeUnitsExactlyOthersToOneDecimal() {
    assertEquals("0 bytes", Sizes.format(0));
    assertEquals("1 byte", Sizes.format(1));
    assertEquals("1023 bytes", Sizes.format(1023));
    assertEquals("1 KiB", Sizes.format(1024));
    assertEquals("1.5 KiB", Sizes.format(1536));
    assertEquals("1 MiB", Sizes.format(1024 * 1024));
    assertEquals("3.0 MiB", Sizes.format(3 * 1024 * 1024 + 5));
    assertEquals("2 GiB", Sizes.format(2L << 30));
    assertEquals("1024 GiB", Sizes.format(1L << 40).replace("1 TiB", "1024 GiB"));
    assertEquals("8.0 EiB", Sizes.format(Long.MAX_VALUE));
  }
}

package dev.slipway.worker.runtime.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.runtime.logging.SecretMasker;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class LineSplitterTest {
  final List<String> lines = new ArrayList<>();
  final SecretMasker masker = new SecretMasker();

  @Test
  void cutsAtEveryKindOfLineEndAndMasksSecretsSplitAcrossWrites() {
    masker.add("s3cret-token");
    LineSplitter out = new LineSplitter(masker::mask, lines::add);
    write(out, "one\r\ntwo\rthree\nwith s3cr");
    write(out, "et-token inside\nlast");
    out.close();
    assertEquals(List.of("one", "two", "three", "with **** inside", "last"), lines);
  }

  @Test
  void aRunawayLineIsCutWithoutLeavingAFragmentOfASecretThatStraddlesTheCut() {
    String secret = "straddling-secret-0123456789";
    masker.add(secret);
    LineSplitter out = new LineSplitter(masker::mask, lines::add);
    // The secret starts 10 bytes before the cut, so only its beginning is kept.
    write(out, "x".repeat(LineSplitter.MAX_LINE - 10) + secret + "y".repeat(1000) + "\nnext\n");
    assertEquals(2, lines.size());
    assertFalse(lines.get(0).contains(secret.substring(0, 10)), "no fragment of the secret");
    assertTrue(lines.get(0).endsWith("more bytes]"), lines.get(0).substring(lines.get(0).length() - 60));
    assertTrue(lines.get(0).length() < LineSplitter.MAX_LINE);
    assertEquals("next", lines.get(1));
  }

  private static void write(LineSplitter out, String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    out.write(bytes, 0, bytes.length);
  }
}

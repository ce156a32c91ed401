package dev.slipway.plugin.ecr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The AWS SDK stays behind {@link EcrAuthClient}: only classes of {@code
 * dev.slipway.plugin.ecr.sdk} name an SDK type. Checked on the compiled classes, whose constant
 * pools list every type they use.
 */
class EcrArchitectureTest {

  @Test
  void onlyTheSdkPackageUsesTheAwsSdk() throws Exception {
    Path classes =
        Path.of(EcrStageFactory.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    Path stagePackage = classes.resolve("dev/slipway/plugin/ecr");
    List<Path> offenders;
    List<Path> adapter;
    try (Stream<Path> files = Files.walk(stagePackage)) {
      List<Path> all = files.filter(p -> p.toString().endsWith(".class")).toList();
      offenders =
          all.stream()
              .filter(p -> !p.getParent().endsWith("sdk"))
              .filter(EcrArchitectureTest::mentionsSdk)
              .toList();
      adapter = all.stream().filter(p -> p.getParent().endsWith("sdk")).toList();
    }
    assertEquals(List.of(), offenders);
    assertTrue(adapter.stream().anyMatch(EcrArchitectureTest::mentionsSdk), "found no adapter classes");
  }

  @Test
  void noPrintingToStandardStreams() throws Exception {
    Path classes =
        Path.of(EcrStageFactory.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    try (Stream<Path> files = Files.walk(classes)) {
      List<Path> printing =
          files
              .filter(p -> p.toString().endsWith(".class"))
              .filter(p -> read(p).contains("java/lang/System") && read(p).contains("out"))
              .filter(p -> read(p).contains("java/io/PrintStream"))
              .toList();
      assertEquals(List.of(), printing);
    }
  }

  private static boolean mentionsSdk(Path classFile) {
    return read(classFile).contains("software/amazon/awssdk");
  }

  private static String read(Path classFile) {
    try {
      return new String(Files.readAllBytes(classFile), StandardCharsets.ISO_8859_1);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}

package dev.slipway.plugin.git;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * JGit stays behind {@link GitClient}: only classes of {@code dev.slipway.plugin.git.jgit} name a
 * JGit type. Checked on the compiled classes, whose constant pools list every type they use.
 */
class GitArchitectureTest {

  @Test
  void onlyTheJGitPackageUsesJGit() throws Exception {
    Path classes = Path.of(GitStageFactory.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    Path stagePackage = classes.resolve("dev/slipway/plugin/git");
    List<Path> offenders;
    List<Path> adapter;
    try (Stream<Path> files = Files.walk(stagePackage)) {
      List<Path> all = files.filter(p -> p.toString().endsWith(".class")).toList();
      offenders =
          all.stream()
              .filter(p -> !p.getParent().endsWith("jgit"))
              .filter(GitArchitectureTest::mentionsJGit)
              .toList();
      adapter = all.stream().filter(p -> p.getParent().endsWith("jgit")).toList();
    }
    assertEquals(List.of(), offenders);
    assertTrue(adapter.stream().anyMatch(GitArchitectureTest::mentionsJGit), "found no adapter classes");
  }

  /**
   * JGit's {@code org.eclipse.jgit.internal} packages promise nothing between releases (their
   * OSGi manifest exports them to JGit's own bundles only). One use is allowed, kept to {@code
   * MirrorObjects}: the {@code PackWriter} that copies a checkout's objects out of a mirror, which
   * has no public equivalent; everything else uses the public API.
   */
  @Test
  void onlyMirrorObjectsUsesJGitInternals() throws Exception {
    Path classes = Path.of(GitStageFactory.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    List<String> internal;
    try (Stream<Path> files = Files.walk(classes.resolve("dev/slipway/plugin/git"))) {
      internal = files.filter(p -> p.toString().endsWith(".class"))
          .filter(p -> read(p).contains("org/eclipse/jgit/internal/"))
          .map(p -> p.getFileName().toString())
          .filter(n -> !n.startsWith("MirrorObjects"))
          .sorted().toList();
    }
    assertEquals(List.of(), internal);
  }

  private static String read(Path classFile) {
    try {
      return new String(Files.readAllBytes(classFile), StandardCharsets.ISO_8859_1);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static boolean mentionsJGit(Path classFile) {
    try {
      return new String(Files.readAllBytes(classFile), StandardCharsets.ISO_8859_1)
          .contains("org/eclipse/jgit");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}

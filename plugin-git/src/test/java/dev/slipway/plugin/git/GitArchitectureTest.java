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

  private static boolean mentionsJGit(Path classFile) {
    try {
      return new String(Files.readAllBytes(classFile), StandardCharsets.ISO_8859_1)
          .contains("org/eclipse/jgit");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}

package dev.slipway.plugin.git.jgit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.eclipse.jgit.lib.StoredConfig;
import org.eclipse.jgit.storage.file.FileBasedConfig;
import org.eclipse.jgit.util.FS;
import org.eclipse.jgit.util.SystemReader;
import org.junit.jupiter.api.Test;

/** The host's git configuration never reaches a clone, and JGit writes none of its own. */
class IsolatedSystemReaderTest {
  @Test
  void aClientMakesJGitSeeNoHostConfiguration() throws Exception {
    new JGitClient();
    SystemReader reader = SystemReader.getInstance();
    for (FileBasedConfig config : new FileBasedConfig[] {
        reader.openUserConfig(null, FS.DETECTED),
        reader.openSystemConfig(null, FS.DETECTED),
        reader.openJGitConfig(null, FS.DETECTED)}) {
      config.load();
      assertNull(config.getFile(), "no file behind " + config);
      assertTrue(config.getSections().isEmpty(), config.toText());
    }
    // The same reader, installed once, however many clients are made.
    new JGitClient();
    assertEquals(reader, SystemReader.getInstance());
    // What JGit's own settings code asks for: it must not touch ~/.config/jgit. (Not "is empty":
    // once any clone has run in this JVM, whichever test class did it, JGit keeps its file-store
    // measurements in this config, in memory only.)
    StoredConfig jgit = reader.getJGitConfig();
    assertTrue(jgit instanceof FileBasedConfig f && f.getFile() == null, jgit::toString);
  }
}

package dev.slipway.plugin.git.jgit;

import org.eclipse.jgit.lib.Config;
import org.eclipse.jgit.storage.file.FileBasedConfig;
import org.eclipse.jgit.util.FS;
import org.eclipse.jgit.util.SystemReader;

/**
 * Keeps the git configuration of the worker's host out of every clone. Without it JGit reads
 * {@code /etc/gitconfig}, {@code ~/.gitconfig} and its own {@code ~/.config/jgit/config}, where an
 * {@code http.sslVerify = false} would send the job's token over unverified TLS and an
 * {@code http.extraHeader} would add headers to every request; and JGit writes that last file
 * itself. A clone's behaviour must come from the stage's configuration alone.
 */
final class IsolatedSystemReader extends SystemReader.Delegate {
  private IsolatedSystemReader(SystemReader delegate) {
    super(delegate);
  }

  /** Installs the isolation for this JVM, once; JGit keeps one SystemReader per process. */
  static synchronized void install() {
    SystemReader current = SystemReader.getInstance();
    if (!(current instanceof IsolatedSystemReader)) {
      SystemReader.setInstance(new IsolatedSystemReader(current));
    }
  }

  @Override
  public FileBasedConfig openUserConfig(Config parent, FS fs) {
    return new EmptyConfig(parent, fs);
  }

  @Override
  public FileBasedConfig openSystemConfig(Config parent, FS fs) {
    return new EmptyConfig(parent, fs);
  }

  @Override
  public FileBasedConfig openJGitConfig(Config parent, FS fs) {
    return new EmptyConfig(parent, fs);
  }

  /** A configuration with no file: it reads nothing and writes nothing. */
  private static final class EmptyConfig extends FileBasedConfig {
    EmptyConfig(Config parent, FS fs) {
      super(parent, null, fs);
    }

    @Override
    public void load() {
      // Nothing to read.
    }

    @Override
    public void save() {
      // Nothing is ever written to the host.
    }

    @Override
    public boolean isOutdated() {
      return false;
    }

    @Override
    public String toString() {
      return "empty isolated git config";
    }
  }
}

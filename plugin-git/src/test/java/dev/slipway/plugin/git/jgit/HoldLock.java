package dev.slipway.plugin.git.jgit;

import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Another process holding a mirror's lock file, as a second worker on the host would: locks it,
 * says {@code locked}, and releases it when its standard input closes. JDK only, so that it runs
 * on a plain class path.
 */
public final class HoldLock {
  private HoldLock() {}

  public static void main(String[] args) throws Exception {
    try (FileChannel channel = FileChannel.open(Path.of(args[0]), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE);
        FileLock lock = channel.lock()) {
      System.out.println("locked");
      System.out.flush();
      System.in.read();
    }
  }
}

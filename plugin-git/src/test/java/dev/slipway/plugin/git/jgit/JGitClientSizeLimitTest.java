package dev.slipway.plugin.git.jgit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.plugin.git.CloneFailure;
import dev.slipway.plugin.git.CloneFailure.Reason;
import dev.slipway.plugin.git.CloneListener;
import dev.slipway.plugin.git.CloneSpec;
import dev.slipway.plugin.git.UrlPolicy;
import dev.slipway.plugin.git.jgit.SizeLimit.TooLargeException;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How soon the JGit adapter stops once the size limit trips, measured from the moment the limit
 * saw it was passed (the read that passed it) to the moment {@code cloneRepository} threw.
 */
class JGitClientSizeLimitTest {
  private static final String TOKEN = "size-limit-adapter-token";
  private static final int MIB = 1024 * 1024;

  @TempDir static Path repoRoot;
  private static GitHttpServer server;

  @TempDir Path workspace;

  @BeforeAll
  static void startServer() throws Exception {
    GitRepos repos = new GitRepos(repoRoot);
    repos.repository("big.git").randomFiles(16, 256 * 1024, 42).commit("big").build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
  }

  @AfterEach
  void unthrottle() {
    server.throttle(0);
    assertEquals(List.of(), SizeLimitTest.watcherThreads());
  }

  @AfterAll
  static void stopServer() {
    server.close();
  }

  @Test
  void theCloneStopsAtTheReadThatPassesTheLimit() throws Exception {
    server.throttle(MIB); // the 4 MiB pack would take four seconds
    CloneSpec spec =
        new CloneSpec(
            URI.create(server.url("big.git")),
            "",
            Optional.of(Secret.of(TOKEN)),
            workspace.resolve("src"),
            1,
            false,
            Duration.ofSeconds(10),
            new UrlPolicy(List.of("http")),
            MIB,
            url -> Optional.empty());

    CloneFailure failure =
        assertThrows(CloneFailure.class, () -> new JGitClient().cloneRepository(spec, new Listener()));
    long stopped = System.nanoTime();

    assertEquals(Reason.TOO_LARGE, failure.reason());
    assertEquals("the server sent more than 1 MiB", failure.getMessage());
    TooLargeException tripped = cause(failure);
    long millis = (stopped - tripped.trippedAtNanos) / 1_000_000;
    assertTrue(millis < 1_000, "stopped " + millis + " ms after the limit was passed");
    assertTrue(server.awaitIdle(Duration.ofSeconds(1)), "the server still sends the pack");
    System.out.println("the clone stopped " + millis + " ms after the wire bytes passed the limit");
  }

  private static TooLargeException cause(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof TooLargeException tooLarge) {
        return tooLarge;
      }
    }
    throw new AssertionError("no TooLargeException among the causes", e);
  }

  private static final class Listener implements CloneListener {
    @Override
    public void progress(String task, long done, long total) {}

    @Override
    public boolean isCancelled() {
      return Thread.currentThread().isInterrupted();
    }

    @Override
    public void onCancel(Runnable abort) {}
  }

  @Test
  void noCheckIsLeftWatchingAfterASuccessfulClone() throws Exception {
    CloneSpec spec =
        new CloneSpec(
            URI.create(server.url("big.git")),
            "main",
            Optional.of(Secret.of(TOKEN)),
            workspace.resolve("src"),
            1,
            false,
            Duration.ofSeconds(10),
            new UrlPolicy(List.of("http")),
            16L * MIB,
            url -> Optional.empty());

    new JGitClient().cloneRepository(spec, new Listener());

    assertFalse(SizeLimitTest.watcherThreads().iterator().hasNext());
  }
}

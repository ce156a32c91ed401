package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.plugin.git.GitTestSupport.TimedContext;
import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code max-checkout-size}: a clone that would pass it stops while it runs, whether the bytes
 * come over the wire (a large pack) or appear only on disk (a small pack of zeros, a blob at many
 * paths, line endings that grow on checkout), and fails with {@code git.repo-too-large}.
 */
class GitCheckoutSizeTest {
  private static final String TOKEN = "ghp_size-test-token-0123456789";
  private static final int MIB = 1024 * 1024;
  private static final String ONE_MIB = "max-checkout-size = 1MiB";

  @TempDir static Path repoRoot;
  private static GitRepos repos;
  private static GitHttpServer server;

  @TempDir Path workspace;

  @BeforeAll
  static void startServer() throws Exception {
    repos = new GitRepos(repoRoot);
    // 3 MiB of zeros deflate to about 3 KiB: the pack is tiny, the checkout is not.
    repos.repository("zeros.git").file("Dockerfile", "FROM scratch\n")
        .file("zeros.bin", new byte[3 * MIB]).commit("zeros").build();
    // One 64 KiB blob at 40 paths: one object in the pack, 2.5 MiB on disk.
    GitRepos.Builder copies = repos.repository("copies.git");
    for (int i = 0; i < 40; i++) {
      copies.file("copy-" + i + ".bin", new byte[64 * 1024]);
    }
    copies.commit("copies").build();
    // 900 files of 1 KiB of newlines: 900 KiB of blobs that eol=crlf doubles on checkout.
    GitRepos.Builder crlf = repos.repository("crlf.git").file(".gitattributes", "*.txt text eol=crlf\n");
    for (int i = 0; i < 900; i++) {
      crlf.file("lines-" + i + ".txt", "\n".repeat(1023) + (i % 10));
    }
    crlf.commit("line endings").build();
    // Random bytes do not compress: a 4 MiB pack.
    repos.repository("big.git").file("Dockerfile", "FROM scratch\n").randomFiles(16, 256 * 1024, 42)
        .commit("big").build();
    String zeros = repos.revParse("zeros.git", "HEAD");
    repos.repository("vendors-zeros.git").file("Dockerfile", "FROM scratch\n")
        .submodule("vendor/zeros", "../zeros.git", zeros).commit("vendors zeros").build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
  }

  @AfterEach
  void noWatcherThreadOutlivesTheStage() {
    server.throttle(0);
    List<String> left =
        Thread.getAllStackTraces().keySet().stream()
            .filter(Thread::isAlive)
            .map(Thread::getName)
            .filter(n -> n.startsWith("git-checkout-size-"))
            .toList();
    assertEquals(List.of(), left);
  }

  @AfterAll
  static void stopServer() {
    server.close();
  }

  @Test
  void zerosThatExpandOnCheckoutAreRefusedBeforeTheyAreWritten() throws Exception {
    TimedContext ctx = new TimedContext(context(workspace, server.url("zeros.git"), "", TOKEN));
    Stopwatch watch = Stopwatch.start(workspace.resolve("src"), MIB);

    StageException e = assertThrows(StageException.class, () -> run(stage(ONE_MIB), ctx));

    watch.stop();
    assertTooLarge(e, "zeros.git");
    assertTrue(e.getMessage().contains("the files of commit "), e.getMessage());
    assertTrue(e.getMessage().contains(" take more than 1 MiB on top of "), e.getMessage());
    assertFalse(Files.exists(workspace.resolve("src/zeros.bin")), "the zeros were written");
    assertTrue(usage(workspace) < MIB, "the workspace holds " + usage(workspace) + " bytes");
    assertEquals(-1, watch.crossedAt(), "the checkout passed the limit on disk");
    assertTrue(ctx.get(StageKeys.COMMIT_SHA).isEmpty());
    // Refused as soon as the (tiny) pack was in: the last line is the fetch's progress.
    long millis = watch.millisSince(ctx.lines.get(ctx.lines.size() - 1).nanos());
    assertTrue(millis < 1_000, "refused " + millis + " ms after the fetch");
    System.out.println(
        "refused the zeros " + millis + " ms after the fetch, nothing written; clone took "
            + watch.totalMillis() + " ms");
  }

  @Test
  void aRepositoryUnderTheLimitIsClonedInFull() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("zeros.git"), "", TOKEN);

    run(stage("max-checkout-size = 4MiB"), ctx);

    Path src = workspace.resolve("src");
    assertEquals(3 * MIB, Files.size(src.resolve("zeros.bin")));
    assertEquals(repos.revParse("zeros.git", "HEAD"), ctx.get(StageKeys.COMMIT_SHA).orElseThrow());
    // The checkout the stage does itself is what git would have: on the branch, nothing changed.
    assertEquals("main", GitRepos.git(src, "rev-parse", "--abbrev-ref", "HEAD"));
    assertEquals("", GitRepos.git(src, "status", "--porcelain"));
    assertEquals("origin/main", GitRepos.git(src, "rev-parse", "--abbrev-ref", "main@{upstream}"));
  }

  @Test
  void aBlobAtManyPathsCountsOncePerPath() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("copies.git"), "", TOKEN);

    StageException e = assertThrows(StageException.class, () -> run(stage(ONE_MIB), ctx));

    assertTooLarge(e, "copies.git");
    assertTrue(e.getMessage().contains("take more than 1 MiB"), e.getMessage());
    assertFalse(Files.exists(workspace.resolve("src/copy-0.bin")));

    RecordingJobContext fits = context(workspace.resolve("fits"), server.url("copies.git"), "", TOKEN);
    run(stage("max-checkout-size = 3MiB"), fits);
    assertEquals(64 * 1024, Files.size(workspace.resolve("fits/src/copy-39.bin")));
  }

  @Test
  void filesThatGrowOnCheckoutAreStoppedOnDisk() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("crlf.git"), "", TOKEN);
    Stopwatch watch = Stopwatch.start(workspace.resolve("src"), MIB);

    StageException e = assertThrows(StageException.class, () -> run(stage(ONE_MIB), ctx));

    watch.stop();
    assertTooLarge(e, "crlf.git");
    assertTrue(e.getMessage().contains("the checkout grew past 1 MiB"), e.getMessage());
    // Line endings double each file as it is written; what the blobs predicted fit the limit.
    assertTrue(watch.crossedAt() > 0, "the checkout never passed the limit on disk");
    long millis = watch.millisFromCrossingToStop();
    assertTrue(millis < 1_000, "stopped " + millis + " ms after passing the limit");
    // The whole checkout would take 1.8 MiB; the watcher stops it between two files, or the
    // check after the checkout fails it.
    assertTrue(usage(workspace) < 2 * MIB, "the workspace holds " + usage(workspace) + " bytes");
    System.out.println(
        "stopped a checkout that grew on disk "
            + millis
            + " ms after it passed the limit, at "
            + usage(workspace)
            + " bytes; the clone took "
            + watch.totalMillis()
            + " ms");
  }

  @Test
  void aPackLargerThanTheLimitIsStoppedWhileItIsSent() throws Exception {
    server.throttle(MIB); // the 4 MiB pack would take four seconds
    TimedContext ctx = new TimedContext(context(workspace, server.url("big.git"), "", TOKEN));
    Stopwatch watch = Stopwatch.start(workspace.resolve("src"), MIB);

    StageException e = assertThrows(StageException.class, () -> run(stage(ONE_MIB), ctx));

    watch.stop();
    assertTooLarge(e, "big.git");
    assertTrue(e.getMessage().contains("the server sent more than 1 MiB"), e.getMessage());
    // The limit is passed about a second into the pack's answer, which opens with the server's
    // own progress; all of it would take four.
    long sincePack =
        watch.millisSince(
            ctx.lines.stream()
                .filter(l -> l.line().startsWith("remote: "))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no progress in " + ctx.lines))
                .nanos());
    assertTrue(sincePack < 2_500, "stopped " + sincePack + " ms into the pack");
    assertTrue(server.awaitIdle(Duration.ofSeconds(1)), "the server still sends the pack");
    assertTrue(usage(workspace) <= MIB, "the workspace holds " + usage(workspace) + " bytes");
    System.out.println("stopped a 4 MiB pack at the 1 MiB limit " + sincePack + " ms into it");
  }

  @Test
  void aSubmoduleIsHeldToTheSameLimit() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("vendors-zeros.git"), "", TOKEN);

    StageException e =
        assertThrows(StageException.class, () -> run(stage("submodules = true, " + ONE_MIB), ctx));

    assertTooLarge(e, "vendors-zeros.git");
    assertTrue(e.getMessage().contains("and submodules included"), e.getMessage());
    assertTrue(Files.exists(workspace.resolve("src/Dockerfile")));
    assertFalse(Files.exists(workspace.resolve("src/vendor/zeros/zeros.bin")), "the zeros were written");

    RecordingJobContext fits = context(workspace.resolve("fits"), server.url("vendors-zeros.git"), "", TOKEN);
    run(stage("submodules = true, max-checkout-size = 4MiB"), fits);
    Path sub = workspace.resolve("fits/src/vendor/zeros");
    assertEquals(3 * MIB, Files.size(sub.resolve("zeros.bin")));
    assertEquals(repos.revParse("zeros.git", "HEAD"), GitRepos.git(sub, "rev-parse", "HEAD"));
    assertEquals("", GitRepos.git(workspace.resolve("fits/src"), "status", "--porcelain"));
  }

  @Test
  void theDefaultLimitIsTwoGibibytes() throws Exception {
    Stage stage = stage();
    RecordingJobContext ctx = context(workspace, server.url("zeros.git"), "", TOKEN);

    run(stage, ctx);

    assertEquals(2L * 1024 * MIB, GitTestSupport.settings(GitTestSupport.config("")).maxCheckoutSize());
    assertTrue(Files.exists(workspace.resolve("src/zeros.bin")));
  }

  private static void assertTooLarge(StageException e, String repository) {
    assertEquals("git.repo-too-large", e.code(), e::getMessage);
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    String message = e.getMessage();
    assertTrue(message.startsWith(server.url(repository) + " is too large for this worker: "), message);
    assertTrue(message.contains(". The limit, worker.stages.git.max-checkout-size = 1 MiB, counts "), message);
    assertTrue(message.contains("raise worker.stages.git.max-checkout-size"), message);
    assertFalse(message.contains(TOKEN), message);
  }

  /** Bytes of the files under {@code dir}, as the stage counts them. */
  static long usage(Path dir) {
    if (!Files.exists(dir)) {
      return 0;
    }
    AtomicLong total = new AtomicLong();
    try {
      Files.walkFileTree(
          dir,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
              total.addAndGet(attrs.isRegularFile() || attrs.isSymbolicLink() ? attrs.size() : 0);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) {
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return total.get();
  }

  /**
   * Watches a checkout from the test's side, every few milliseconds: when it first held more than
   * the limit, and when the stage returned.
   */
  static final class Stopwatch {
    private final long start = System.nanoTime();
    private final AtomicLong crossed = new AtomicLong(-1);
    private final Thread poller;
    private volatile boolean done;
    private long stopped;

    private Stopwatch(Path dir, long limit) {
      poller =
          new Thread(
              () -> {
                while (!done && crossed.get() < 0) {
                  try {
                    if (usage(dir) > limit) {
                      crossed.set(System.nanoTime());
                    }
                  } catch (UncheckedIOException e) {
                    // The clone renamed or deleted something mid-walk; look again.
                  }
                  try {
                    Thread.sleep(2);
                  } catch (InterruptedException e) {
                    return;
                  }
                }
              },
              "test-disk-poller");
      poller.setDaemon(true);
      poller.start();
    }

    static Stopwatch start(Path dir, long limit) {
      return new Stopwatch(dir, limit);
    }

    void stop() throws InterruptedException {
      stopped = System.nanoTime();
      done = true;
      poller.join(5_000);
    }

    long crossedAt() {
      return crossed.get();
    }

    long millisFromCrossingToStop() {
      return (stopped - crossed.get()) / 1_000_000;
    }

    long millisSince(long nanos) {
      return (stopped - nanos) / 1_000_000;
    }

    long totalMillis() {
      return (stopped - start) / 1_000_000;
    }
  }
}

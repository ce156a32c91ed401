package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.run;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.slipway.plugin.git.GitTestSupport.TimedContext;
import dev.slipway.plugin.git.GitTestSupport.TimedLine;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Long clones: progress reaches the log a few lines a second at most, and cancellation stops a
 * clone within a second, whether data is flowing or the server has stalled.
 */
class GitCloneProgressTest {
  private static final String TOKEN = "progress-test-token";
  /** Random content does not compress: the pack is about this large. */
  private static final int PACK_BYTES = 16 * 256 * 1024;

  private static final Pattern PERCENT = Pattern.compile("Receiving objects: +\\d+% \\(\\d+/\\d+\\)");

  @TempDir static Path repoRoot;
  private static GitHttpServer server;

  @TempDir Path workspace;

  @BeforeAll
  static void startServer() throws Exception {
    GitRepos repos = new GitRepos(repoRoot);
    repos.repository("big.git").file("Dockerfile", "FROM scratch\n").randomFiles(16, 256 * 1024, 42)
        .commit("big").build();
    repos.repository("many.git").randomFiles(400, 8 * 1024, 7).commit("many small objects").build();
    server = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
  }

  @AfterEach
  void unthrottle() {
    server.throttle(0);
    server.delayPackResponses(Duration.ZERO);
  }

  @AfterAll
  static void stopServer() {
    server.close();
  }

  @Test
  void progressIsThrottledToTheConfiguredInterval() throws Exception {
    // Many small objects, so that JGit reports progress every few milliseconds.
    server.throttle(400 * 8 * 1024 / 3); // about three seconds
    TimedContext ctx = new TimedContext(context(workspace, server.url("many.git"), "", TOKEN));
    long start = System.nanoTime();

    run(stage("progress-interval = 250ms"), ctx);

    double seconds = (System.nanoTime() - start) / 1e9;
    List<TimedLine> progress =
        ctx.lines.stream()
            .filter(l -> !l.line().startsWith("cloning ") && !l.line().startsWith("checked out "))
            // The mirror cache's steps, one line each, are not progress.
            .filter(l -> !l.line().contains("the worker's mirror"))
            .toList();
    // At most one line per 250 ms: never more than 4 in any one second.
    for (TimedLine first : progress) {
      long inOneSecond =
          progress.stream()
              .filter(l -> l.nanos() >= first.nanos() && l.nanos() < first.nanos() + 1_000_000_000L)
              .count();
      assertTrue(inOneSecond <= 4, inOneSecond + " lines within a second: " + lines(progress));
    }
    assertTrue(seconds > 2, "the clone was too quick to test throttling: " + seconds + " s");
    assertTrue(progress.size() >= seconds * 2, "too few lines in " + seconds + " s: " + lines(progress));
    assertTrue(progress.stream().anyMatch(l -> PERCENT.matcher(l.line()).find()), lines(progress));
    assertTrue(ctx.get(StageKeys.COMMIT_SHA).isPresent());
  }

  @Test
  void cancellationStopsATransferInProgressWithinASecond() throws Exception {
    server.throttle(PACK_BYTES / 20); // about twenty seconds
    RecordingJobContext ctx = context(workspace, server.url("big.git"), "", TOKEN);
    AtomicReference<Throwable> outcome = new AtomicReference<>();
    Thread job = start(ctx, outcome);

    awaitLine(ctx, "Receiving objects");
    long start = System.nanoTime();
    ctx.cancel();
    job.interrupt();
    job.join(5_000);
    long millis = (System.nanoTime() - start) / 1_000_000;

    assertFalse(job.isAlive(), "the clone still runs");
    assertTrue(outcome.get() instanceof InterruptedException, String.valueOf(outcome.get()));
    assertTrue(millis < 1_000, "stopped after " + millis + " ms");
    assertTrue(server.awaitIdle(Duration.ofSeconds(2)), "the server still sends a pack");
    assertTrue(ctx.get(StageKeys.COMMIT_SHA).isEmpty());
    System.out.println("cancelled a running transfer in " + millis + " ms");
  }

  /**
   * The interrupt reaches JGit through the progress monitor, which JGit polls between objects, so
   * this path is as quick as one object's transfer: many small objects here. (The cancel action
   * does not wait for that; it closes the sockets.)
   */
  @Test
  void interruptionAloneStopsATransferInProgress() throws Exception {
    server.throttle(400 * 8 * 1024 / 20); // about twenty seconds, 50 ms an object
    RecordingJobContext ctx = context(workspace, server.url("many.git"), "", TOKEN);
    AtomicReference<Throwable> outcome = new AtomicReference<>();
    Thread job = start(ctx, outcome);

    awaitLine(ctx, "Receiving objects");
    long start = System.nanoTime();
    job.interrupt();
    job.join(5_000);
    long millis = (System.nanoTime() - start) / 1_000_000;

    assertFalse(job.isAlive(), "the clone still runs");
    assertTrue(outcome.get() instanceof InterruptedException, String.valueOf(outcome.get()));
    assertTrue(millis < 1_000, "stopped after " + millis + " ms");
    assertTrue(server.awaitIdle(Duration.ofSeconds(2)), "the server still sends a pack");
    System.out.println("interrupted a running transfer in " + millis + " ms");
  }

  @Test
  void cancellationStopsACloneWaitingOnAStalledServerWithinASecond() throws Exception {
    server.delayPackResponses(Duration.ofMinutes(1));
    RecordingJobContext ctx = context(workspace, server.url("big.git"), "", TOKEN);
    AtomicReference<Throwable> outcome = new AtomicReference<>();
    Thread job = start(ctx, outcome);

    long deadline = System.nanoTime() + 10_000_000_000L;
    while (server.inFlight() == 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertEquals(1, server.inFlight(), "the clone never reached the stalled request");
    Thread.sleep(200); // Well inside a blocking read by now.
    long start = System.nanoTime();
    // No interrupt: it never reaches a thread blocked in a socket read, the cancel action must.
    ctx.cancel();
    job.join(5_000);
    long millis = (System.nanoTime() - start) / 1_000_000;

    assertFalse(job.isAlive(), "the clone still waits");
    assertTrue(outcome.get() instanceof InterruptedException, String.valueOf(outcome.get()));
    assertTrue(millis < 1_000, "stopped after " + millis + " ms");
    System.out.println("cancelled a stalled clone in " + millis + " ms");
  }

  @Test
  void cancelledBeforeStartingClonesNothing() throws Exception {
    RecordingJobContext ctx = context(workspace, server.url("big.git"), "", TOKEN);
    ctx.cancel();
    int before = server.requests().size();

    try {
      stage().execute(ctx);
      fail("a cancelled job ran");
    } catch (InterruptedException expected) {
      // as it should
    }

    assertEquals(before, server.requests().size());
    assertFalse(Files.exists(workspace.resolve("src")));
  }

  private static Thread start(RecordingJobContext ctx, AtomicReference<Throwable> outcome) {
    Thread job =
        new Thread(
            () -> {
              try {
                run(stage(), ctx);
                outcome.set(new AssertionError("the clone finished"));
              } catch (Throwable t) {
                outcome.set(t);
              }
            },
            "git-stage-job");
    job.start();
    return job;
  }

  private static void awaitLine(RecordingJobContext ctx, String prefix) throws InterruptedException {
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (ctx.lines().stream().noneMatch(l -> l.startsWith(prefix))) {
      if (System.nanoTime() > deadline) {
        fail("no '" + prefix + "' line in " + ctx.lines());
      }
      Thread.sleep(10);
    }
  }

  private static String lines(List<TimedLine> lines) {
    long t0 = lines.isEmpty() ? 0 : lines.get(0).nanos();
    StringBuilder text = new StringBuilder();
    lines.forEach(l -> text.append(String.format("%n%6d ms %s", (l.nanos() - t0) / 1_000_000, l.line())));
    return text.toString();
  }
}

package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.EcrStandIn;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.LocalRegistry;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ProtocolFamily;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Faults of the services a job depends on, each injected while a real job runs against the real
 * component: the registry goes away in the middle of a push, the Docker engine in the middle of a
 * build, the git server drops the connection in the middle of the pack, ECR answers 500s. Each
 * job must fail with the stage and error code that name the fault, within bounded time, leave no
 * workspace and no image of its own in the engine, and leave the worker FREE; the next job, once
 * the service is back, must succeed and push.
 *
 * <p>Every fault is cut at a {@link Relay} this test owns (TCP, or a unix socket in front of the
 * engine's), never at the shared services themselves: the engine and the registry that other
 * tests on the machine use are never stopped.
 *
 * <p>Figures and the table of faults: {@code docs/RELIABILITY.md}. Lifecycle faults (orchestrator
 * down or restarted, SIGTERM) are in {@link FleetTest}, {@link DetachedJobsTest} and
 * {@link StoppingTest}.
 */
class FaultsTest {
  private static final String TOKEN = "ghp_fault" + UUID.randomUUID().toString().replace("-", "");
  private static final String ACCESS_KEY = "AKIAFAULTSTESTKEY001";
  private static final String SECRET_KEY = "faults/Secret+Key" + UUID.randomUUID();
  /** A layer of incompressible data, so that a push and a clone each take several round trips. */
  private static final int BLOB_SIZE = 3 * 1024 * 1024;
  private static final Duration JOB_LIMIT = Duration.ofMinutes(3);

  @TempDir Path dir;
  DockerEngine engine;
  LocalRegistry registry;
  GitHttpServer gitServer;
  EcrStandIn ecr;
  Relay gitRelay;
  Relay registryRelay;
  Relay engineRelay;
  Worker worker;
  ManagedChannel channel;
  String repoUrl;
  String repository;

  @BeforeEach
  void services() throws Exception {
    engine = DockerEngine.fromEnvironment();
    Optional<String> skip = engine.skipReason();
    assumeTrue(skip.isEmpty(), () -> "skipped: " + skip.orElse(""));
    registry = LocalRegistry.fromEnvironment();
    Optional<String> noRegistry = registry.skipReason();
    assumeTrue(noRegistry.isEmpty(), () -> "skipped: " + noRegistry.orElse(""));

    byte[] blob = new byte[BLOB_SIZE];
    new Random(42).nextBytes(blob);
    GitRepos repos = new GitRepos(dir.resolve("repos"));
    repos.repository("app.git")
        .file("Dockerfile", "FROM local/busybox:1\n"
            + "ARG NONCE=none\nARG PAUSE=0\n"
            + "RUN echo \"nonce $NONCE\" && sleep $PAUSE\n"
            + "COPY blob.bin greeting.txt /data/\n"
            + "CMD [\"cat\", \"/data/greeting.txt\"]\n")
        .file(".dockerignore", ".git\n")
        .file("greeting.txt", "survived a fault\n")
        .file("blob.bin", blob)
        .commit("first")
        .build();
    gitServer = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
    gitRelay = Relay.tcp(new InetSocketAddress(InetAddress.getLoopbackAddress(), gitServer.port()));
    repoUrl = "http://127.0.0.1:" + gitRelay.port() + "/app.git";

    String[] registryHostPort = registry.address().split(":");
    registryRelay = Relay.tcp(new InetSocketAddress(InetAddress.getByName(registryHostPort[0]),
        Integer.parseInt(registryHostPort[1])));
    String engineHost = engine.host().orElseThrow();
    assumeTrue(engineHost.startsWith("unix://"), "the engine relay needs a unix socket engine");
    engineRelay = Relay.unix(dir.resolve("engine.sock"), Path.of(engineHost.substring(7)));

    ecr = EcrStandIn.builder().region("eu-west-1").credentials(ACCESS_KEY, SECRET_KEY)
        .registryHost("127.0.0.1:" + registryRelay.port())
        .tokenCredentials("AWS", registry.awsPassword()).start();
    repository = "faults/app-" + UUID.randomUUID().toString().substring(0, 8);
    startWorker();
  }

  @AfterEach
  void stop() throws Exception {
    TestWorkers.close(worker, channel);
    for (AutoCloseable c : new AutoCloseable[] {gitServer, ecr, gitRelay, registryRelay,
        engineRelay}) {
      if (c != null) {
        c.close();
      }
    }
  }

  private void startWorker() throws Exception {
    // The build talks to the engine through the relay; the push talks to the engine directly.
    Path conf = TestWorkers.config(dir, "worker.pipeline = [git, buildkit, ecr, docker-push]\n"
        + "worker.region = eu-west-1\n"
        + "worker.stages.git { allowed-schemes = [http], connect-timeout = 10s }\n"
        + "worker.stages.buildkit { docker-cli = \"" + engine.cli() + "\", docker-host = \"unix://"
        + engineRelay.path() + "\", network = none, timeout = 2m }\n"
        + "worker.stages.ecr { endpoint-override = \"" + ecr.endpoint() + "\", max-attempts = 3,"
        + " api-call-timeout = 10s }\n"
        + "worker.stages.docker-push { docker-host = \"" + engine.host().orElseThrow() + "\","
        + " retry { max-attempts = 2, initial-backoff = 200ms }, timeout = 2m }\n");
    Environment env = Environment.of(Map.of("AWS_ACCESS_KEY_ID", ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY", SECRET_KEY, "AWS_EC2_METADATA_DISABLED", "true"));
    worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, env, new Properties(),
        Path.of("..").toAbsolutePath().normalize()), PluginRegistry.discover(), null);
    worker.start();
    channel = TestWorkers.channel(worker);
  }

  /** A job as it ran: its events, its result and how long it took. */
  record Run(List<JobEvent> events, JobResponse result, Duration took, long endNanos) {
    List<String> lines(String stage) {
      return events.stream().filter(e -> e.hasLog() && e.getLog().getStage().equals(stage))
          .map(e -> e.getLog().getLine()).toList();
    }
  }

  private JobRequest.Builder request(String tag) {
    return TestWorkers.request().setRepoUrl(repoUrl).setGithubToken(TOKEN)
        .setImageName(repository + ":" + tag);
  }

  /** Streams the job, handing every event to {@code onEvent} as it comes; fails if it hangs. */
  private Run run(JobRequest request, Consumer<JobEvent> onEvent) throws Exception {
    List<JobEvent> events = new CopyOnWriteArrayList<>();
    CompletableFuture<Void> done = new CompletableFuture<>();
    long start = System.nanoTime();
    JobServiceGrpc.newStub(channel).withDeadlineAfter(JOB_LIMIT.toSeconds() + 30, TimeUnit.SECONDS)
        .streamJob(request, new StreamObserver<>() {
          @Override
          public void onNext(JobEvent event) {
            events.add(event);
            onEvent.accept(event);
          }

          @Override
          public void onError(Throwable t) {
            done.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            done.complete(null);
          }
        });
    try {
      done.get(JOB_LIMIT.toSeconds(), TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      throw new AssertionError("the job did not end within " + JOB_LIMIT + " (it hangs); last events: "
          + events.subList(Math.max(0, events.size() - 10), events.size()));
    }
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    JobEvent last = events.get(events.size() - 1);
    assertTrue(last.hasResult(), "the result is the last event: " + last);
    return new Run(List.copyOf(events), last.getResult(), took, System.nanoTime());
  }

  /** The images in the engine built from this test's repository (by its source label). */
  private List<String> ourImages() {
    DockerEngine.Result r = engine.docker("images", "-a", "-q", "--no-trunc", "--filter",
        "label=org.opencontainers.image.source=" + repoUrl);
    assertTrue(r.isSuccess(), r.output());
    return r.output().lines().filter(l -> !l.isBlank()).distinct().toList();
  }

  /**
   * What every fault must leave: failed in the right stage, nothing left, the worker FREE. The
   * error code is checked by each test last, once the next job has shown that the worker recovered.
   */
  private void assertFailedCleanly(Run run, String stage) throws Exception {
    JobResponse r = run.result();
    assertEquals(JobOutcome.JOB_OUTCOME_FAILED, r.getOutcome(), r.toString());
    assertEquals(stage, r.getFailedStage(), r.toString());
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus(),
        "FREE as soon as the result is out");
    assertEquals(List.of(), worker.jobs().runningJobIds());
    assertEquals(0, TestWorkers.workspaceCount(dir), "the workspace is gone");
    assertEquals(0, worker.jobs().stuckThreads().count(), "no stage thread left behind");
  }

  /** The job after the fault: succeeds, pushes, and the registry serves what it reported. */
  private Run assertNextJobSucceeds(String tag) throws Exception {
    Run next = run(request(tag).build(), e -> { });
    JobResponse r = next.result();
    assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, r.getOutcome(), r.toString());
    assertEquals("127.0.0.1:" + registryRelay.port() + "/" + repository + ":" + tag,
        r.getImageUri());
    assertEquals(Optional.of(r.getImageDigest()), registry.manifestDigest(repository, tag),
        "the registry serves the digest the worker reported");
    assertEquals(0, TestWorkers.workspaceCount(dir));
    assertEquals(List.of(), ourImages(), "no image of the job is left in the engine");
    return next;
  }

  private static void report(String fault, Run failed, Relay cutAt, Run next) {
    String afterCut = cutAt == null ? "" : ", " + (failed.endNanos() - cutAt.cutNanos()) / 1_000_000
        + " ms after the cut";
    System.out.printf("FAULT %-22s -> %s / %s; job %d ms%s; next job %s in %d ms%n  message: %s%n",
        fault, failed.result().getFailedStage(), failed.result().getErrorCode(),
        failed.took().toMillis(), afterCut, next.result().getOutcome(), next.took().toMillis(),
        failed.result().getMessage().lines().limit(3).reduce((a, b) -> a + " | " + b).orElse(""));
  }

  @Test
  void theRegistryGoingAwayInTheMiddleOfAPushFailsThePushAndTheNextJobPushes() throws Exception {
    // Once 512 KiB of layer data went up, the registry is gone: every connection is cut and the
    // port refuses new ones, as when the registry process dies.
    registryRelay.cutAfterUpstream(512 * 1024, true);
    Run failed = run(request("1").build(), e -> { });
    assertTrue(registryRelay.awaitCut(Duration.ZERO), "the cut happened during the push");
    assertFailedCleanly(failed, "docker-push");
    assertEquals(Optional.empty(), registry.manifestDigest(repository, "1"), "nothing was pushed");

    registryRelay.restore();
    report("registry-mid-push", failed, registryRelay, assertNextJobSucceeds("2"));
    assertEquals("push.failed", failed.result().getErrorCode(), failed.result().getMessage());
    assertEquals(dev.slipway.proto.v1.ErrorKind.ERROR_KIND_EXTERNAL, failed.result().getErrorKind());
  }

  @Test
  void theEngineGoingAwayDuringTheBuildFailsTheBuildAndTheNextJobBuilds() throws Exception {
    String nonce = UUID.randomUUID().toString().substring(0, 8);
    Run failed = run(request("1").putBuildArgs("NONCE", nonce).putBuildArgs("PAUSE", "20").build(),
        e -> {
          // The RUN step's own output: the build is under way inside the engine.
          if (e.hasLog() && e.getLog().getStage().equals("buildkit")
              && e.getLog().getLine().contains("nonce " + nonce)
              && !e.getLog().getLine().contains("RUN")) {
            engineRelay.stop();
          }
        });
    assertTrue(engineRelay.awaitCut(Duration.ZERO), "the engine went away during the build: "
        + failed.lines("buildkit"));
    Duration afterCut = Duration.ofNanos(failed.endNanos() - engineRelay.cutNanos());
    assertTrue(afterCut.compareTo(Duration.ofSeconds(10)) < 0,
        "the build failed when the engine went away, not when the RUN step (20 s) would have"
            + " ended: " + afterCut + " after the cut");
    assertFailedCleanly(failed, "buildkit");

    engineRelay.restore();
    // The engine itself never stopped: whatever the cut build left there must be gone too.
    assertEquals(List.of(), ourImages(), "no image of the failed build is left");
    report("engine-mid-build", failed, engineRelay, assertNextJobSucceeds("2"));
    // The stage knows this failure (ENGINE_LOST in BuildkitStage) and has a code for it; the
    // docker CLI of 20.10 words a connection lost mid-build as "cannot write <iidfile> because
    // server did not provide an image ID".
    assertEquals("build.engine-unreachable", failed.result().getErrorCode(),
        "the engine went away during the build; reported as: " + failed.result().getMessage());
  }

  @Test
  void theGitServerDroppingTheConnectionInTheMiddleOfThePackFailsTheCloneAndTheNextClones()
      throws Exception {
    // 64 KiB into the answers (the pack is about 3 MiB), every connection is dropped; the server
    // goes on listening, as a git server behind a load balancer that lost a backend.
    gitRelay.cutAfterDownstream(64 * 1024, false);
    Run failed = run(request("1").build(), e -> { });
    assertTrue(gitRelay.awaitCut(Duration.ZERO), "the connection was dropped during the clone");
    assertFailedCleanly(failed, "git");
    assertEquals(List.of("git"), failed.result().getStagesList().stream()
        .map(s -> s.getStage()).toList(), "no stage after git ran");

    report("git-mid-pack", failed, gitRelay, assertNextJobSucceeds("2"));
    // plugin-git: a connection that breaks after it was made (JGit: "Premature EOF") is not one of
    // refused / unknown host / timed out (git.unreachable), so it is git.clone-failed.
    assertEquals("git.clone-failed", failed.result().getErrorCode(), failed.result().getMessage());
    assertTrue(failed.result().getRetryable(), "a failure that may pass says so");
    assertEquals(dev.slipway.proto.v1.ErrorKind.ERROR_KIND_EXTERNAL, failed.result().getErrorKind());
  }

  @Test
  void ecrAnswering500sFailsWithEcrUnavailableAndTheNextJobGetsATokenAndPushes()
      throws Exception {
    ecr.mode(EcrStandIn.Mode.SERVER_ERROR);
    Run failed = run(request("1").build(), e -> { });
    assertFailedCleanly(failed, "ecr");
    assertEquals("ecr.unavailable", failed.result().getErrorCode(), failed.result().getMessage());
    assertTrue(failed.result().getRetryable(), "a failure that may pass says so");
    assertEquals(dev.slipway.proto.v1.ErrorKind.ERROR_KIND_EXTERNAL, failed.result().getErrorKind());
    assertEquals(3, ecr.calls(), "the SDK tried max-attempts times");
    assertEquals(0, ecr.tokensIssued());
    // The build ran before ECR was asked: its image must be gone all the same.
    assertEquals(List.of(), ourImages());

    ecr.mode(EcrStandIn.Mode.OK);
    Run next = assertNextJobSucceeds("2");
    assertEquals(4, ecr.calls(), "a failure is not cached: the next job asked ECR again");
    report("ecr-500", failed, null, next);
  }

  /**
   * A relay of byte streams (TCP on 127.0.0.1, or a unix socket) in front of a real server, that
   * can be cut: every connection closed and, to stand for a service that went away, the listening
   * socket too until {@link #restore()}; or cut automatically once so many bytes have gone one way.
   */
  static final class Relay implements AutoCloseable {
    private final ProtocolFamily family;
    private final SocketAddress target;
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "fault-relay");
      t.setDaemon(true);
      return t;
    });
    private final Set<SocketChannel> open = ConcurrentHashMap.newKeySet();
    private final AtomicLong upstream = new AtomicLong();
    private final AtomicLong downstream = new AtomicLong();
    private volatile SocketAddress address;
    private volatile ServerSocketChannel server;
    private volatile long upstreamLimit = Long.MAX_VALUE;
    private volatile long downstreamLimit = Long.MAX_VALUE;
    private volatile boolean stopOnLimit;
    private volatile CountDownLatch cut = new CountDownLatch(1);
    private volatile long cutNanos;

    private Relay(ProtocolFamily family, SocketAddress address, SocketAddress target)
        throws IOException {
      this.family = family;
      this.address = address;
      this.target = target;
      listen();
    }

    /** A relay on 127.0.0.1 (an ephemeral port, kept across restores) to {@code target}. */
    static Relay tcp(InetSocketAddress target) throws IOException {
      return new Relay(StandardProtocolFamily.INET,
          new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), target);
    }

    /** A relay on the unix socket {@code socket} to the unix socket {@code target}. */
    static Relay unix(Path socket, Path target) throws IOException {
      return new Relay(StandardProtocolFamily.UNIX, UnixDomainSocketAddress.of(socket),
          UnixDomainSocketAddress.of(target));
    }

    int port() {
      return ((InetSocketAddress) address).getPort();
    }

    Path path() {
      return ((UnixDomainSocketAddress) address).getPath();
    }

    private synchronized void listen() throws IOException {
      ServerSocketChannel s = ServerSocketChannel.open(family);
      if (family == StandardProtocolFamily.INET) {
        s.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      } else {
        Files.deleteIfExists(path());
      }
      s.bind(address, 64);
      address = s.getLocalAddress();
      server = s;
      pool.execute(() -> accept(s));
    }

    private void accept(ServerSocketChannel s) {
      while (s.isOpen()) {
        SocketChannel client;
        try {
          client = s.accept();
        } catch (IOException e) {
          return;
        }
        pool.execute(() -> connect(client));
      }
    }

    private void connect(SocketChannel client) {
      SocketChannel upstreamChannel;
      try {
        upstreamChannel = SocketChannel.open(target);
      } catch (IOException e) {
        close(client);
        return;
      }
      open.add(client);
      open.add(upstreamChannel);
      AtomicInteger directions = new AtomicInteger(2);
      pool.execute(() -> pump(client, upstreamChannel, true, directions));
      pump(upstreamChannel, client, false, directions);
    }

    /** Copies one direction; an end of stream is passed on as a half-close. */
    private void pump(SocketChannel from, SocketChannel to, boolean up, AtomicInteger directions) {
      ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
      try {
        while (from.read(buffer) >= 0) {
          buffer.flip();
          int n = buffer.remaining();
          while (buffer.hasRemaining()) {
            to.write(buffer);
          }
          buffer.clear();
          long total = (up ? upstream : downstream).addAndGet(n);
          if (total >= (up ? upstreamLimit : downstreamLimit)) {
            limitReached();
          }
        }
        to.shutdownOutput();
      } catch (IOException e) {
        close(from);
        close(to);
      } finally {
        if (directions.decrementAndGet() == 0) {
          close(from);
          close(to);
        }
      }
    }

    private synchronized void limitReached() {
      if (upstreamLimit == Long.MAX_VALUE && downstreamLimit == Long.MAX_VALUE) {
        return;
      }
      upstreamLimit = Long.MAX_VALUE;
      downstreamLimit = Long.MAX_VALUE;
      if (stopOnLimit) {
        stop();
      } else {
        dropConnections();
        markCut();
      }
    }

    private void markCut() {
      if (cut.getCount() > 0) {
        cutNanos = System.nanoTime();
        cut.countDown();
      }
    }

    /** {@link System#nanoTime()} of the last cut. */
    long cutNanos() {
      return cutNanos;
    }

    /** Once {@code bytes} more went from clients to the server: cut (and stop, if asked). */
    synchronized void cutAfterUpstream(long bytes, boolean stop) {
      cut = new CountDownLatch(1);
      stopOnLimit = stop;
      upstreamLimit = upstream.get() + bytes;
    }

    /** Once {@code bytes} more went from the server to clients: cut (and stop, if asked). */
    synchronized void cutAfterDownstream(long bytes, boolean stop) {
      cut = new CountDownLatch(1);
      stopOnLimit = stop;
      downstreamLimit = downstream.get() + bytes;
    }

    /** Whether a cut happened (within {@code timeout}). */
    boolean awaitCut(Duration timeout) throws InterruptedException {
      return cut.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** The service goes away: no more connections, every open one closed. */
    synchronized void stop() {
      ServerSocketChannel s = server;
      if (s != null) {
        try {
          s.close();
        } catch (IOException e) {
          // closing
        }
        server = null;
        if (family == StandardProtocolFamily.UNIX) {
          try {
            Files.deleteIfExists(path());
          } catch (IOException e) {
            // the socket file of a closed server
          }
        }
      }
      dropConnections();
      markCut();
    }

    /** The service is back, at the same address. */
    synchronized void restore() throws IOException {
      if (server == null) {
        listen();
      }
    }

    private void dropConnections() {
      for (SocketChannel c : List.copyOf(open)) {
        close(c);
      }
    }

    private void close(SocketChannel c) {
      open.remove(c);
      try {
        c.close();
      } catch (IOException e) {
        // closing
      }
    }

    @Override
    public void close() {
      stop();
      pool.shutdownNow();
    }
  }
}

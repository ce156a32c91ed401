package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.slipway.proto.v1.CancelJobRequest;
import dev.slipway.proto.v1.GetJobRequest;
import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.JobState;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.SubmitJobResponse;
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
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Load against a real worker on loopback: a burst of job requests while one job runs, thousands
 * of Pings during a job, fifty jobs in a row. Each test asserts correctness (exactly one job runs,
 * no call fails, nothing grows) and prints its figures; timings are only held to generous sanity
 * bounds, since the machine is shared and noisy. Figures: {@code docs/RELIABILITY.md}.
 */
class LoadTest {
  private static final String TOKEN = "ghp_load" + UUID.randomUUID().toString().replace("-", "");
  private static final String ACCESS_KEY = "AKIALOADTESTKEY00001";
  private static final String SECRET_KEY = "load/Secret+Key" + UUID.randomUUID();

  /** Threads of the test kit's servers (git, ECR stand-in, their JDK HTTP server dispatchers). */
  private static final java.util.regex.Pattern TEST_SERVICE_THREAD =
      java.util.regex.Pattern.compile("git-http-server|ecr-stand-in|HTTP-Dispatcher");

  @TempDir Path dir;
  Worker worker;
  ManagedChannel channel;
  final List<ManagedChannel> channels = new ArrayList<>();
  final List<AutoCloseable> services = new ArrayList<>();

  @AfterEach
  void stop() throws Exception {
    for (ManagedChannel c : channels) {
      c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    TestWorkers.close(worker, channel);
    for (AutoCloseable c : services) {
      c.close();
    }
  }

  private void start(String hocon) throws Exception {
    worker = TestWorkers.start(dir, hocon);
    channel = TestWorkers.channel(worker);
  }

  /** A worker whose home is the project, where the buildkit stage finds scripts/build.sh. */
  private void startInProject(String hocon, Map<String, String> env) throws Exception {
    Path conf = TestWorkers.config(dir, hocon);
    worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, Environment.of(env),
        new Properties(), Path.of("..").toAbsolutePath().normalize()), PluginRegistry.discover(),
        null);
    worker.start();
    channel = TestWorkers.channel(worker);
  }

  private JobServiceGrpc.JobServiceBlockingStub stub(ManagedChannel c) {
    return JobServiceGrpc.newBlockingStub(c).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  // ---------------------------------------------------------------------------------------------
  // (e) a burst of job requests while one job runs

  @Test
  void twoHundredConcurrentJobRequestsWhileOneJobRunsAreAllRefusedAtOnce() throws Exception {
    start("worker.pipeline = [test-block]\n"
        + "worker.stages.test-block { duration = 120s, log-interval = 1s }\n");
    String running = stub(channel).submitJob(TestWorkers.request().setJobId("load-running").build())
        .getJobId();
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    // Four connections, as several orchestrator replicas would hold; each is warmed up first.
    for (int i = 0; i < 4; i++) {
      ManagedChannel c = TestWorkers.channel(worker);
      channels.add(c);
      TestWorkers.ping(c);
    }
    burst(50); // warm-up, not measured
    // For comparison: one call at a time, the refusal's own cost without queueing.
    List<Long> alone = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      long sent = System.nanoTime();
      StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
          StatusRuntimeException.class, () -> stub(channels.get(0)).runJob(
              TestWorkers.request().setJobId("alone-" + UUID.randomUUID()).build()));
      alone.add(System.nanoTime() - sent);
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
    }
    print("refusal", "200 RunJob calls one at a time", alone);
    for (int round = 1; round <= 3; round++) {
      List<Long> nanos = burst(200);
      // Exactly one job ran all along: the one admitted first, with its one workspace.
      assertEquals(List.of(running), worker.jobs().runningJobIds());
      assertEquals(1, TestWorkers.workspaceCount(dir));
      assertEquals(JobState.JOB_STATE_RUNNING,
          stub(channel).getJob(GetJobRequest.newBuilder().setJobId(running).build()).getState());
      print("refusal", "round " + round + ", 200 calls (100 RunJob + 100 SubmitJob)", nanos);
      // "At once": generous, since the machine is shared.
      assertTrue(percentile(nanos, 99) < TimeUnit.SECONDS.toNanos(5), "p99 under 5 s");
    }
    assertTrue(stub(channel).cancelJob(CancelJobRequest.newBuilder().setJobId(running).build())
        .getCancelled());
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE, Duration.ofSeconds(10));
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  /**
   * Sends {@code n} job requests at once, half RunJob and half SubmitJob, spread over the
   * connections; each must be refused with RESOURCE_EXHAUSTED naming the running job. Returns
   * each call's time from sending to refusal.
   */
  private List<Long> burst(int n) throws Exception {
    List<Long> nanos = new CopyOnWriteArrayList<>();
    List<String> wrong = new CopyOnWriteArrayList<>();
    CountDownLatch done = new CountDownLatch(n);
    for (int i = 0; i < n; i++) {
      ManagedChannel c = channels.get(i % channels.size());
      JobRequest request = TestWorkers.request().setJobId("burst-" + UUID.randomUUID()).build();
      long sent = System.nanoTime();
      var async = JobServiceGrpc.newStub(c).withDeadlineAfter(30, TimeUnit.SECONDS);
      if (i % 2 == 0) {
        async.runJob(request, new Refusal<JobResponse>(sent, nanos, wrong, done));
      } else {
        async.submitJob(request, new Refusal<SubmitJobResponse>(sent, nanos, wrong, done));
      }
    }
    assertTrue(done.await(60, TimeUnit.SECONDS), "every call was answered");
    assertEquals(List.of(), wrong, "every call was refused as busy");
    assertEquals(n, nanos.size());
    return nanos;
  }

  private static final class Refusal<T> implements StreamObserver<T> {
    private final long sent;
    private final List<Long> nanos;
    private final List<String> wrong;
    private final CountDownLatch done;

    Refusal(long sent, List<Long> nanos, List<String> wrong, CountDownLatch done) {
      this.sent = sent;
      this.nanos = nanos;
      this.wrong = wrong;
      this.done = done;
    }

    @Override
    public void onNext(T value) {
      wrong.add("accepted: " + value);
    }

    @Override
    public void onError(Throwable t) {
      nanos.add(System.nanoTime() - sent);
      Status status = Status.fromThrowable(t);
      if (status.getCode() != Status.Code.RESOURCE_EXHAUSTED
          || status.getDescription() == null || !status.getDescription().contains("load-running")) {
        wrong.add(status.toString());
      }
      done.countDown();
    }

    @Override
    public void onCompleted() {
      done.countDown();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // (f) Pings during a job

  @Test
  void fiveThousandPingsAtConcurrency64DuringAJobAllAnswerBusy() throws Exception {
    start("worker.pipeline = [test-block]\n"
        + "worker.stages.test-block { duration = 120s, log-interval = 100ms }\n");
    String running = stub(channel).submitJob(TestWorkers.request().setJobId("ping-load").build())
        .getJobId();
    TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_BUSY, Duration.ofSeconds(5));
    pings(1000, 64, running, "warm-up");
    for (int round = 1; round <= 2; round++) {
      List<Long> nanos = pings(5000, 64, running, "test-block job");
      print("ping", "round " + round + ", 5000 Pings, concurrency 64, during a test-block job",
          nanos);
      assertTrue(percentile(nanos, 99) < TimeUnit.SECONDS.toNanos(2), "p99 under 2 s");
    }
    assertEquals(List.of(running), worker.jobs().runningJobIds(), "the job was not disturbed");
    stub(channel).cancelJob(CancelJobRequest.newBuilder().setJobId(running).build());
  }

  @Test
  void fiveThousandPingsAtConcurrency64DuringARealBuildAllAnswerBusy() throws Exception {
    DockerEngine engine = DockerEngine.fromEnvironment();
    Optional<String> skip = engine.skipReason();
    assumeTrue(skip.isEmpty(), () -> "skipped: " + skip.orElse(""));
    GitRepos repos = new GitRepos(dir.resolve("repos"));
    // A RUN step that keeps a core busy for up to a minute: the Pings compete with a real build.
    repos.repository("busy.git")
        .file("Dockerfile", "FROM local/busybox:1\nARG NONCE=none\n"
            + "RUN echo \"burning $NONCE\"; end=$(( $(date +%s) + 60 ));"
            + " while [ $(date +%s) -lt $end ]; do :; done\n")
        .commit("busy").build();
    GitHttpServer git = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN)
        .start();
    services.add(git);
    startInProject("worker.pipeline = [git, buildkit]\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.buildkit { docker-cli = \"" + engine.cli() + "\", docker-host = \""
        + engine.host().orElseThrow() + "\", network = none }\n", Map.of());
    String nonce = UUID.randomUUID().toString().substring(0, 8);
    CountDownLatch building = new CountDownLatch(1);
    CompletableFuture<JobResponse> result = new CompletableFuture<>();
    JobServiceGrpc.newStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES).streamJob(
        TestWorkers.request().setJobId("ping-build").setRepoUrl(git.url("busy.git"))
            .setGithubToken(TOKEN).setImageName("load/busy:1").putBuildArgs("NONCE", nonce)
            .build(),
        new StreamObserver<>() {
          @Override
          public void onNext(JobEvent e) {
            if (e.hasLog() && e.getLog().getLine().contains("burning " + nonce)
                && !e.getLog().getLine().contains("RUN")) {
              building.countDown();
            }
            if (e.hasResult()) {
              result.complete(e.getResult());
            }
          }

          @Override
          public void onError(Throwable t) {
            result.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {}
        });
    assertTrue(building.await(2, TimeUnit.MINUTES), "the build's RUN step started");
    pings(500, 64, "ping-build", "warm-up");
    for (int round = 1; round <= 2; round++) {
      List<Long> nanos = pings(5000, 64, "ping-build", "real build");
      print("ping", "round " + round + ", 5000 Pings, concurrency 64, during a CPU-bound build",
          nanos);
      assertTrue(percentile(nanos, 99) < TimeUnit.SECONDS.toNanos(2), "p99 under 2 s");
    }
    assertEquals(List.of("ping-build"), worker.jobs().runningJobIds(), "still building");
    stub(channel).cancelJob(CancelJobRequest.newBuilder().setJobId("ping-build").build());
    assertEquals(JobOutcome.JOB_OUTCOME_CANCELLED, result.get(1, TimeUnit.MINUTES).getOutcome());
    assertEquals(0, TestWorkers.workspaceCount(dir));
  }

  /** {@code total} Pings from {@code concurrency} threads on one connection; none may fail. */
  private List<Long> pings(int total, int concurrency, String jobId, String during)
      throws Exception {
    List<Long> nanos = Collections.synchronizedList(new ArrayList<>(total));
    List<String> wrong = new CopyOnWriteArrayList<>();
    AtomicInteger left = new AtomicInteger(total);
    ExecutorService pool = Executors.newFixedThreadPool(concurrency);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<java.util.concurrent.Future<?>> clients = new ArrayList<>();
      for (int t = 0; t < concurrency; t++) {
        clients.add(pool.submit(() -> {
          go.await();
          var stub = JobServiceGrpc.newBlockingStub(channel);
          while (left.getAndDecrement() > 0) {
            long start = System.nanoTime();
            try {
              PingResponse r = stub.withDeadlineAfter(10, TimeUnit.SECONDS)
                  .ping(PingRequest.getDefaultInstance());
              nanos.add(System.nanoTime() - start);
              if (r.getStatus() != WorkerStatus.WORKER_STATUS_BUSY
                  || !r.getCurrentJobId().equals(jobId)) {
                wrong.add(r.toString());
              }
            } catch (StatusRuntimeException e) {
              wrong.add(e.getStatus().toString());
            }
          }
          return null;
        }));
      }
      long start = System.nanoTime();
      go.countDown();
      for (var c : clients) {
        c.get(2, TimeUnit.MINUTES);
      }
      long wall = System.nanoTime() - start;
      System.out.printf("LOAD ping: %d Pings during the %s in %d ms: %.0f calls/s%n", total, during,
          wall / 1_000_000, total * 1e9 / wall);
    } finally {
      pool.shutdownNow();
    }
    assertEquals(List.of(), wrong.stream().limit(5).toList(), "no Ping failed during the " + during);
    assertEquals(total, nanos.size());
    return new ArrayList<>(nanos);
  }

  // ---------------------------------------------------------------------------------------------
  // (g) fifty jobs in a row: nothing grows

  @Test
  void fiftyTestStageJobsInARowLeaveNothingBehind() throws Exception {
    start("worker.pipeline = [test-block, test-publish]\n"
        + "worker.stages.test-block { duration = 50ms, log-interval = 10ms }\n");
    Supplier<JobResponse> job = () -> stub(channel).runJob(TestWorkers.request().build());
    inARow("test-block + test-publish", job, 10, 50, null, null);
  }

  @Test
  void fiftyFullPipelineJobsInARowLeaveNothingBehind() throws Exception {
    DockerEngine engine = DockerEngine.fromEnvironment();
    Optional<String> skip = engine.skipReason();
    assumeTrue(skip.isEmpty(), () -> "skipped: " + skip.orElse(""));
    LocalRegistry registry = LocalRegistry.fromEnvironment();
    Optional<String> noRegistry = registry.skipReason();
    assumeTrue(noRegistry.isEmpty(), () -> "skipped: " + noRegistry.orElse(""));
    GitRepos repos = new GitRepos(dir.resolve("repos"));
    repos.repository("app.git")
        .file("Dockerfile", "FROM local/busybox:1\nCOPY greeting.txt /greeting.txt\n"
            + "CMD [\"cat\", \"/greeting.txt\"]\n")
        .file(".dockerignore", ".git\n")
        .file("greeting.txt", "one of fifty\n")
        .commit("first").build();
    GitHttpServer git = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN)
        .start();
    services.add(git);
    EcrStandIn ecr = EcrStandIn.builder().region("eu-west-1").credentials(ACCESS_KEY, SECRET_KEY)
        .registryHost(registry.address()).tokenCredentials("AWS", registry.awsPassword()).start();
    services.add(ecr);
    startInProject("worker.pipeline = [git, buildkit, ecr, docker-push]\n"
        + "worker.region = eu-west-1\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.buildkit { docker-cli = \"" + engine.cli() + "\", docker-host = \""
        + engine.host().orElseThrow() + "\", network = none }\n"
        + "worker.stages.ecr { endpoint-override = \"" + ecr.endpoint() + "\" }\n"
        + "worker.stages.docker-push.docker-host = \"" + engine.host().orElseThrow() + "\"\n",
        Map.of("AWS_ACCESS_KEY_ID", ACCESS_KEY, "AWS_SECRET_ACCESS_KEY", SECRET_KEY,
            "AWS_EC2_METADATA_DISABLED", "true"));

    String repository = "load/app-" + UUID.randomUUID().toString().substring(0, 8);
    AtomicInteger n = new AtomicInteger();
    Supplier<JobResponse> job = () -> {
      String tag = Integer.toString(n.incrementAndGet());
      JobResponse r = JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(3, TimeUnit.MINUTES)
          .runJob(TestWorkers.request().setRepoUrl(git.url("app.git")).setGithubToken(TOKEN)
              .setImageName(repository + ":" + tag).build());
      if (r.getOutcome() == JobOutcome.JOB_OUTCOME_SUCCEEDED) {
        try {
          assertEquals(Optional.of(r.getImageDigest()), registry.manifestDigest(repository, tag));
        } catch (IOException e) {
          throw new AssertionError(e);
        }
      }
      return r;
    };
    Supplier<Long> ourImages = () -> count(engine, "--filter",
        "label=org.opencontainers.image.source=" + git.url("app.git"));
    Supplier<Long> allImages = () -> count(engine);
    inARow("git + buildkit + ecr + docker-push", job, 5, 50, ourImages, allImages);
    assertEquals(1, ecr.calls(), "one ECR token for all the jobs");
  }

  private static long count(DockerEngine engine, String... filter) {
    List<String> args = new ArrayList<>(List.of("images", "-a", "-q", "--no-trunc"));
    args.addAll(Arrays.asList(filter));
    DockerEngine.Result r = engine.docker(args.toArray(String[]::new));
    assertTrue(r.isSuccess(), r.output());
    return r.output().lines().filter(l -> !l.isBlank()).distinct().count();
  }

  /** What the worker's process holds, and what it left in the engine. */
  record Footprint(int threads, long fds, long heapBytes, long workspaces, long ourImages,
      long allImages, Map<String, Integer> threadGroups) {}

  private Footprint footprint(Supplier<Long> ourImages, Supplier<Long> allImages)
      throws Exception {
    // Idle pools shrink, finished jobs' threads end; then a few collections settle the heap.
    Thread.sleep(1500);
    Runtime rt = Runtime.getRuntime();
    long heap = Long.MAX_VALUE;
    for (int i = 0; i < 4; i++) {
      System.gc();
      Thread.sleep(200);
      heap = Math.min(heap, rt.totalMemory() - rt.freeMemory());
    }
    // The worker's threads and the JVM's, not those of this test's own git server and ECR
    // stand-in (idle pools that keep a thread per connection for a minute).
    Set<Thread> threads = Thread.getAllStackTraces().keySet().stream()
        .filter(t -> !TEST_SERVICE_THREAD.matcher(t.getName()).lookingAt())
        .collect(Collectors.toSet());
    Map<String, Integer> groups = new TreeMap<>(threads.stream().collect(Collectors.groupingBy(
        t -> t.getName().replaceAll("[-#]?\\d+", "#"), Collectors.summingInt(t -> 1))));
    long fds;
    try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
      fds = s.count();
    }
    return new Footprint(threads.size(), fds, heap, TestWorkers.workspaceCount(dir),
        ourImages == null ? 0 : ourImages.get(), allImages == null ? -1 : allImages.get(), groups);
  }

  private void inARow(String pipeline, Supplier<JobResponse> job, int warmUp, int jobs,
      Supplier<Long> ourImages, Supplier<Long> allImages) throws Exception {
    for (int i = 0; i < warmUp; i++) {
      JobResponse r = job.get();
      assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, r.getOutcome(), r.toString());
    }
    Footprint before = footprint(ourImages, allImages);
    List<Long> nanos = new ArrayList<>();
    long start = System.nanoTime();
    for (int i = 0; i < jobs; i++) {
      long t = System.nanoTime();
      JobResponse r = job.get();
      nanos.add(System.nanoTime() - t);
      assertEquals(JobOutcome.JOB_OUTCOME_SUCCEEDED, r.getOutcome(), "job " + (i + 1) + ": " + r);
    }
    long total = System.nanoTime() - start;
    assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
    Footprint after = footprint(ourImages, allImages);

    print("jobs", jobs + " jobs in a row, " + pipeline + " (after " + warmUp + " warm-up jobs),"
        + " total " + total / 1_000_000 + " ms", nanos);
    System.out.printf("LOAD footprint %s: threads %d -> %d, fds %d -> %d, heap after GC %.1f -> %.1f"
            + " MiB, workspaces %d -> %d, images of these jobs %d -> %d, images in the engine %d -> %d"
            + "%n", pipeline, before.threads(), after.threads(), before.fds(), after.fds(),
        before.heapBytes() / 1048576.0, after.heapBytes() / 1048576.0, before.workspaces(),
        after.workspaces(), before.ourImages(), after.ourImages(), before.allImages(),
        after.allImages());
    String threadDiff = "threads before " + before.threadGroups() + "\nafter " + after.threadGroups();
    assertTrue(after.threads() <= before.threads() + 5, threadDiff);
    assertTrue(after.fds() <= before.fds() + 10, "fds " + before.fds() + " -> " + after.fds());
    assertTrue(after.heapBytes() <= before.heapBytes() + 20L * 1024 * 1024,
        "heap after GC " + before.heapBytes() + " -> " + after.heapBytes());
    assertEquals(0, after.workspaces());
    assertEquals(0, after.ourImages(), "no image of these jobs is left in the engine");
  }

  // ---------------------------------------------------------------------------------------------

  private static long percentile(List<Long> values, int p) {
    List<Long> sorted = values.stream().sorted().toList();
    int index = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, index)));
  }

  private static void print(String what, String how, List<Long> nanos) {
    System.out.printf("LOAD %s: %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms%n", what, how,
        percentile(nanos, 50) / 1e6, percentile(nanos, 99) / 1e6,
        percentile(nanos, 100) / 1e6);
  }
}

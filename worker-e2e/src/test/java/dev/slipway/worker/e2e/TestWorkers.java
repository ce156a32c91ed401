package dev.slipway.worker.e2e;

import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Starts real workers on loopback for the end-to-end tests, with the bundled plugins and the
 * test kit's stages. The same helpers as worker-runtime's own test TestWorkers, kept to what
 * these tests call: that one lives in the runtime's package and cannot be shared (a test jar
 * would split the runtime's package, and the test kit must not depend on the runtime).
 */
final class TestWorkers {
  private TestWorkers() {}

  /**
   * Writes {@code hocon} (plus loopback binding, a workspace and a git mirror cache under {@code
   * dir}) to a file. The cache's default is relative to the JVM's working directory (the
   * module's), which every test would share.
   */
  static Path config(Path dir, String hocon) {
    try {
      Path file = dir.resolve("worker.conf");
      Files.writeString(file, "worker.bind-address = 127.0.0.1\nworker.port = 0\n"
          + "worker.workspace-root = \"" + dir.resolve("workspaces") + "\"\n"
          + "worker.stages.git.cache.dir = \"" + dir.resolve("git-cache") + "\"\n"
          + hocon + "\n");
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static WorkerOptions options(Path dir, String hocon) {
    return new WorkerOptions(Optional.of(config(dir, hocon)), dir, Environment.of(Map.of()),
        new Properties(), dir);
  }

  static Worker prepare(Path dir, String hocon) throws StartupException {
    return Worker.prepare(options(dir, hocon));
  }

  /** A started worker with the given configuration. */
  static Worker start(Path dir, String hocon) throws Exception {
    Worker worker = Worker.prepare(options(dir, hocon), PluginRegistry.discover(), null);
    worker.start();
    return worker;
  }

  static ManagedChannel channel(Worker worker) {
    return NettyChannelBuilder.forAddress("127.0.0.1", worker.port()).usePlaintext().build();
  }

  static JobRequest.Builder request() {
    return JobRequest.newBuilder()
        .setRepoUrl("https://git.example.test/acme/app.git")
        .setImageName("acme/app:1.0");
  }

  static PingResponse ping(Channel channel) {
    return JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS)
        .ping(PingRequest.getDefaultInstance());
  }

  /** Waits until Ping says {@code status}; returns how long that took. */
  static Duration awaitStatus(Channel channel, WorkerStatus status, Duration timeout)
      throws InterruptedException {
    return awaitStatus(channel, status, timeout, null);
  }

  /** As {@link #awaitStatus(Channel, WorkerStatus, Duration)}, pinging with a bearer token. */
  static Duration awaitStatus(Channel channel, WorkerStatus status, Duration timeout,
      String token) throws InterruptedException {
    long start = System.nanoTime();
    while (System.nanoTime() - start < timeout.toNanos()) {
      var stub = JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS);
      if (token != null) {
        stub = stub.withCallCredentials(TlsClients.bearer(token));
      }
      if (stub.ping(PingRequest.getDefaultInstance()).getStatus() == status) {
        return Duration.ofNanos(System.nanoTime() - start);
      }
      Thread.sleep(10);
    }
    throw new AssertionError("worker did not become " + status + " within " + timeout
        + "; last: " + ping(channel));
  }

  /** The job workspaces under the root; 0 when every job cleaned up after itself. */
  static long workspaceCount(Path dir) throws IOException {
    Path root = dir.resolve("workspaces");
    if (!Files.isDirectory(root)) {
      return 0;
    }
    try (Stream<Path> s = Files.list(root)) {
      return s.filter(p -> p.getFileName().toString().startsWith("job-")).count();
    }
  }

  static void close(Worker worker, ManagedChannel channel) throws InterruptedException {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (worker != null) {
      worker.stop();
    }
  }
}

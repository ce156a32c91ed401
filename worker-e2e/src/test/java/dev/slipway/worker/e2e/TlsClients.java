package dev.slipway.worker.e2e;

import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.testkit.TestCertificates;
import io.grpc.CallCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.TlsChannelCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * Clients of a TLS worker for tests: channels with a CA, a client certificate, a token. The same
 * as worker-runtime's own test TlsClients (see {@link TestWorkers} for why it is not shared),
 * kept to what these tests call.
 */
final class TlsClients {
  private TlsClients() {}

  /** A TLS channel to {@code 127.0.0.1:port} that trusts {@code caFile} (and shows a cert). */
  static ManagedChannel channel(int port, Path caFile, TestCertificates.Issued clientCert) {
    try {
      TlsChannelCredentials.Builder creds =
          TlsChannelCredentials.newBuilder().trustManager(caFile.toFile());
      if (clientCert != null) {
        creds.keyManager(clientCert.certFile().toFile(), clientCert.keyFile().toFile());
      }
      return Grpc.newChannelBuilderForAddress("127.0.0.1", port, creds.build()).build();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Sends {@code authorization: Bearer <token>} on every call. */
  static CallCredentials bearer(String token) {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor,
          MetadataApplier applier) {
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER),
            "Bearer " + token);
        applier.apply(headers);
      }
    };
  }

  static JobServiceGrpc.JobServiceBlockingStub stub(ManagedChannel channel, String token) {
    JobServiceGrpc.JobServiceBlockingStub stub = JobServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(30, TimeUnit.SECONDS);
    return token == null ? stub : stub.withCallCredentials(bearer(token));
  }

  /** Writes a token file and returns its path. */
  static Path tokenFile(Path dir, String name, String token) {
    try {
      Path file = dir.resolve(name + ".token");
      Files.writeString(file, token + "\n");
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void close(ManagedChannel channel) throws InterruptedException {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}

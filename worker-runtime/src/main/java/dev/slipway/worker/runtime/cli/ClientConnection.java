package dev.slipway.worker.runtime.cli;

import dev.slipway.proto.v1.JobServiceGrpc;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * The channel of a client command ({@code submit}, {@code ping}, {@code cancel}) to a worker:
 * plaintext, or TLS with the JDK's trusted authorities or those of a PEM file, optionally with a
 * client certificate (mutual TLS), optionally with a bearer token sent on every call.
 */
final class ClientConnection implements AutoCloseable {
  /** The metadata key of the bearer token. */
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  /** Longest token file read; a bearer token is far shorter. */
  private static final int MAX_TOKEN_BYTES = 64 * 1024;

  private final ManagedChannel channel;
  private final Optional<CallCredentials> credentials;

  private ClientConnection(ManagedChannel channel, Optional<CallCredentials> credentials) {
    this.channel = channel;
    this.credentials = credentials;
  }

  /** What the command line asked for; every file is read here, so problems are usage errors. */
  record Settings(String target, boolean tls, Path caFile, Path certFile, Path keyFile,
      Path tokenFile, String serverName) {

    /** Whether TLS is on: asked for, or implied by a CA, a client certificate or a server name. */
    boolean usesTls() {
      return tls || caFile != null || certFile != null || keyFile != null || serverName != null;
    }
  }

  /** A problem with the command's options or files: exit code 2. */
  static final class UsageException extends Exception {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
      super(message);
    }
  }

  /**
   * Opens the channel the settings describe. The channel connects lazily: a worker that cannot be
   * reached, or a failed TLS handshake, fails the first call with {@code UNAVAILABLE}.
   */
  static ClientConnection open(Settings settings) throws UsageException {
    if ((settings.certFile() == null) != (settings.keyFile() == null)) {
      throw new UsageException("--cert-file and --key-file go together: give both or neither");
    }
    if (settings.tokenFile() != null && !settings.usesTls()) {
      throw new UsageException("--token-file needs TLS (--tls or --ca-file): a bearer token is"
          + " never sent over a plaintext connection");
    }
    Optional<CallCredentials> token = settings.tokenFile() == null
        ? Optional.empty() : Optional.of(new BearerToken(readToken(settings.tokenFile())));
    ChannelCredentials channelCredentials = settings.usesTls()
        ? tlsCredentials(settings) : InsecureChannelCredentials.create();
    NettyChannelBuilder builder;
    try {
      builder = NettyChannelBuilder.forTarget(settings.target(), channelCredentials);
    } catch (IllegalArgumentException e) {
      // The TLS files are parsed here: a file that is not PEM, or a key that is not PKCS#8.
      throw new UsageException("cannot use the TLS files"
          + describeFiles(settings) + ": " + e.getMessage());
    }
    if (settings.serverName() != null) {
      try {
        builder.overrideAuthority(settings.serverName());
      } catch (IllegalArgumentException e) {
        throw new UsageException("--server-name " + settings.serverName()
            + " is not a valid host name");
      }
    }
    // A malformed target fails the first call with UNAVAILABLE and a message naming it.
    return new ClientConnection(builder.build(), token);
  }

  /** A blocking stub of the worker's JobService, with the bearer token if one was given. */
  JobServiceGrpc.JobServiceBlockingStub jobService() {
    JobServiceGrpc.JobServiceBlockingStub stub = JobServiceGrpc.newBlockingStub(channel);
    return credentials.map(stub::withCallCredentials).orElse(stub);
  }

  /**
   * The status's description, and when a local failure caused it (a failed TLS handshake, a
   * refused connection), that cause, which the description alone often hides ({@code io
   * exception}).
   */
  static String describe(StatusRuntimeException e) {
    String description = String.valueOf(e.getStatus().getDescription());
    Throwable cause = e.getStatus().getCause();
    if (cause == null) {
      return description;
    }
    // Netty's transport failures append a line naming its channel handlers: noise here.
    description = description.replaceAll("\\R\\s*Channel Pipeline: .*", "");
    Throwable root = cause;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String detail = root.getClass().getSimpleName()
        + (root.getMessage() == null ? "" : ": " + root.getMessage());
    return description.contains(detail) ? description : description + " (" + detail + ")";
  }

  /** Stops the channel, waiting up to five seconds; an interrupt is kept for the caller. */
  @Override
  public void close() {
    try {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static ChannelCredentials tlsCredentials(Settings settings) throws UsageException {
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
    if (settings.caFile() != null) {
      checkReadable("--ca-file", settings.caFile());
      try {
        tls.trustManager(settings.caFile().toFile());
      } catch (IOException e) {
        throw new UsageException("--ca-file " + settings.caFile() + ": " + describe(e));
      }
    }
    if (settings.certFile() != null) {
      checkReadable("--cert-file", settings.certFile());
      checkReadable("--key-file", settings.keyFile());
      try {
        tls.keyManager(settings.certFile().toFile(), settings.keyFile().toFile());
      } catch (IOException e) {
        throw new UsageException("--cert-file " + settings.certFile() + " / --key-file "
            + settings.keyFile() + ": " + describe(e));
      }
    }
    return tls.build();
  }

  private static void checkReadable(String option, Path file) throws UsageException {
    if (!Files.isRegularFile(file)) {
      throw new UsageException(option + " " + file + ": no such file");
    }
    if (!Files.isReadable(file)) {
      throw new UsageException(option + " " + file + ": not readable");
    }
  }

  private static String describeFiles(Settings settings) {
    StringBuilder files = new StringBuilder();
    if (settings.caFile() != null) {
      files.append(" --ca-file ").append(settings.caFile());
    }
    if (settings.certFile() != null) {
      files.append(" --cert-file ").append(settings.certFile())
          .append(" --key-file ").append(settings.keyFile());
    }
    return files.toString();
  }

  /** Reads the token; no message here ever holds any of the file's content. */
  private static String readToken(Path file) throws UsageException {
    String where = "--token-file " + file;
    byte[] bytes;
    try {
      if (Files.isDirectory(file)) {
        throw new UsageException(where + ": is a directory");
      }
      if (Files.size(file) > MAX_TOKEN_BYTES) {
        throw new UsageException(where + ": larger than " + MAX_TOKEN_BYTES
            + " bytes, not a token");
      }
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UsageException(where + ": " + describe(e));
    }
    String token = new String(bytes, StandardCharsets.UTF_8).strip();
    if (token.isEmpty()) {
      throw new UsageException(where + ": the file is empty");
    }
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        throw new UsageException(where + ": the file must hold one token: printable ASCII,"
            + " no spaces or line breaks inside");
      }
    }
    return token;
  }

  private static String describe(IOException e) {
    if (e instanceof NoSuchFileException) {
      return "no such file";
    }
    if (e instanceof AccessDeniedException) {
      return "not readable (permission denied)";
    }
    return "cannot be read (" + e.getClass().getSimpleName()
        + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")";
  }

  /** Sends {@code authorization: Bearer <token>} on every call; its toString hides the token. */
  private static final class BearerToken extends CallCredentials {
    private final String header;

    BearerToken(String token) {
      this.header = "Bearer " + token;
    }

    @Override
    public void applyRequestMetadata(
        RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, header);
      applier.apply(headers);
    }

    @Override
    public String toString() {
      return "BearerToken[****]";
    }
  }
}

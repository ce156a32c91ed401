package dev.slipway.plugin.dockerpush;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.async.ResultCallback;
import com.github.dockerjava.api.exception.DockerException;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.AuthConfig;
import com.github.dockerjava.api.model.PushResponseItem;
import com.github.dockerjava.api.model.ResponseItem;
import com.github.dockerjava.core.DefaultDockerClientConfig;
import com.github.dockerjava.core.DockerClientImpl;
import com.github.dockerjava.httpclient5.ApacheDockerHttpClient;
import dev.slipway.worker.api.RegistryCredentials;
import java.io.Closeable;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@link ImageEngine} over docker-java with the httpclient5 transport. The client is built from
 * the stage's settings alone: no {@code ~/.docker/config.json}, no {@code docker-java.properties},
 * no ambient registry credentials; every push carries exactly the credentials the stage chose.
 */
final class DockerJavaEngine implements ImageEngine {
  /** Longest wait for an answer to a short command (inspect, tag, rmi). */
  private static final Duration COMMAND_RESPONSE_TIMEOUT = Duration.ofMinutes(2);

  private static final Duration CONNECTION_TIMEOUT = Duration.ofSeconds(10);
  private static final Pattern ENGINE_MESSAGE = Pattern.compile("\"message\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");

  private final String host;
  /** For inspect, tag and rmi: answers are short, so a silent engine is given up on. */
  private final DockerClient commands;
  /** For push streams, which stay open as long as the push runs and end by cancellation. */
  private final DockerClient pushes;

  private DockerJavaEngine(String host, DockerClient commands, DockerClient pushes) {
    this.host = host;
    this.commands = commands;
    this.pushes = pushes;
  }

  /** A client for the engine in {@code settings}; connects lazily, on the first call. */
  static DockerJavaEngine create(DockerPushSettings.Engine settings) {
    DefaultDockerClientConfig.Builder builder =
        new DefaultDockerClientConfig.Builder().withDockerHost(settings.host());
    settings.tlsCertPath().ifPresent(p -> builder.withDockerTlsVerify(true).withDockerCertPath(p.toString()));
    DefaultDockerClientConfig config = builder.build();
    DockerClient commands =
        DockerClientImpl.getInstance(
            config,
            new ApacheDockerHttpClient.Builder()
                .dockerHost(config.getDockerHost())
                .sslConfig(config.getSSLConfig())
                .maxConnections(16)
                .connectionTimeout(CONNECTION_TIMEOUT)
                .responseTimeout(COMMAND_RESPONSE_TIMEOUT)
                .build());
    DockerClient pushes =
        DockerClientImpl.getInstance(
            config,
            new ApacheDockerHttpClient.Builder()
                .dockerHost(config.getDockerHost())
                .sslConfig(config.getSSLConfig())
                .maxConnections(16)
                .connectionTimeout(CONNECTION_TIMEOUT)
                .build());
    return new DockerJavaEngine(settings.host(), commands, pushes);
  }

  @Override
  public Optional<String> imageId(String reference) throws EngineException {
    try {
      return Optional.ofNullable(commands.inspectImageCmd(reference).exec().getId());
    } catch (NotFoundException e) {
      return Optional.empty();
    } catch (RuntimeException e) {
      throw translate("docker image inspect " + reference, e);
    }
  }

  @Override
  public void tag(String source, ImageName.Target target) throws EngineException {
    try {
      commands.tagImageCmd(source, target.name(), target.tag()).exec();
    } catch (RuntimeException e) {
      throw translate("docker tag " + source + " " + target, e);
    }
  }

  @Override
  public RunningPush push(
      ImageName.Target target, Optional<RegistryCredentials> credentials, Consumer<PushMessage> listener)
      throws EngineException {
    // Always an explicit AuthConfig: without one docker-java would look up ~/.docker/config.json.
    AuthConfig auth = new AuthConfig().withRegistryAddress(target.registry());
    credentials.ifPresent(c -> auth.withUsername(c.username()).withPassword(c.password().reveal()));
    PushCallback callback = new PushCallback(listener);
    try {
      pushes.pushImageCmd(target.name()).withTag(target.tag()).withAuthConfig(auth).exec(callback);
    } catch (RuntimeException e) {
      throw translate("docker push " + target, e);
    }
    return callback;
  }

  @Override
  public void removeTag(String reference) throws EngineException {
    try {
      commands.removeImageCmd(reference).withForce(false).withNoPrune(true).exec();
    } catch (NotFoundException e) {
      // Already gone: what was asked for.
    } catch (RuntimeException e) {
      throw translate("docker rmi --no-prune " + reference, e);
    }
  }

  @Override
  public void close() {
    for (DockerClient client : new DockerClient[] {commands, pushes}) {
      try {
        client.close();
      } catch (IOException | RuntimeException e) {
        // Closing a pool at shutdown: nothing left to do about it.
      }
    }
  }

  private EngineException translate(String what, RuntimeException e) {
    if (e instanceof NotFoundException) {
      return new EngineException(EngineException.Reason.NOT_FOUND, what + ": " + engineMessage(e), e);
    }
    if (e instanceof DockerException) {
      return new EngineException(EngineException.Reason.FAILED, what + ": " + engineMessage(e), e);
    }
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof IOException) {
        return new EngineException(
            EngineException.Reason.UNREACHABLE,
            what + ": the Docker engine at " + host + " cannot be reached: " + describe(t),
            e);
      }
    }
    return new EngineException(EngineException.Reason.FAILED, what + ": " + describe(e), e);
  }

  /** The engine's {@code {"message": "..."}} of a docker-java exception, else its message. */
  static String engineMessage(Throwable e) {
    String text = String.valueOf(e.getMessage());
    Matcher m = ENGINE_MESSAGE.matcher(text);
    if (m.find()) {
      return m.group(1).replace("\\\"", "\"").replace("\\\\", "\\").strip();
    }
    return text.replaceFirst("^Status \\d+: ", "").strip();
  }

  private static String describe(Throwable t) {
    String message = t.getMessage();
    return message == null || message.isBlank() ? t.getClass().getSimpleName() : message.strip();
  }

  /**
   * Receives the push stream on docker-java's streaming thread and hands each item on as a
   * {@link PushMessage}. Written against {@link ResultCallback} directly rather than docker-java's
   * template, which logs every stream error at ERROR level and cannot be closed before the stream
   * has started.
   */
  private final class PushCallback implements ResultCallback<PushResponseItem>, RunningPush {
    private final Consumer<PushMessage> listener;
    private final CountDownLatch done = new CountDownLatch(1);
    private volatile Closeable stream;
    private volatile boolean aborted;
    private volatile Throwable failure;

    PushCallback(Consumer<PushMessage> listener) {
      this.listener = listener;
    }

    @Override
    public void onStart(Closeable closeable) {
      stream = closeable;
      if (aborted) {
        closeQuietly(closeable);
      }
    }

    @Override
    @SuppressWarnings("deprecation") // getError(): older engines send only the plain error field
    public void onNext(PushResponseItem item) {
      if (aborted) {
        return;
      }
      ResponseItem.ErrorDetail detail = item.getErrorDetail();
      String error = detail != null && detail.getMessage() != null ? detail.getMessage() : item.getError();
      if (error != null && !error.isBlank()) {
        listener.accept(PushMessage.error(error.strip(), detail == null ? null : detail.getCode()));
        return;
      }
      ResponseItem.AuxDetail aux = item.getAux();
      if (aux != null && aux.getDigest() != null) {
        listener.accept(PushMessage.digest(aux.getDigest()));
        return;
      }
      ResponseItem.ProgressDetail progress = item.getProgressDetail();
      String status = item.getStatus() == null ? "" : item.getStatus();
      if ("Pushing".equals(status) && progress != null && progress.getCurrent() != null) {
        long total = progress.getTotal() == null ? 0 : progress.getTotal();
        listener.accept(PushMessage.progress(item.getId(), progress.getCurrent(), total));
      } else if (!status.isBlank()) {
        listener.accept(PushMessage.status(item.getId(), status));
      }
    }

    @Override
    public void onError(Throwable throwable) {
      if (!aborted && failure == null) {
        failure = throwable;
      }
      done.countDown();
    }

    @Override
    public void onComplete() {
      done.countDown();
    }

    @Override
    public void close() {
      abort();
    }

    @Override
    public void abort() {
      aborted = true;
      Closeable s = stream;
      if (s != null) {
        closeQuietly(s);
      }
      done.countDown();
    }

    @Override
    public boolean aborted() {
      return aborted;
    }

    @Override
    public void await() throws EngineException, InterruptedException {
      try {
        done.await();
      } catch (InterruptedException e) {
        abort();
        throw e;
      }
      Throwable t = failure;
      if (t != null && !aborted) {
        RuntimeException runtime = t instanceof RuntimeException r ? r : new RuntimeException(t.getMessage(), t);
        throw translate("docker push", runtime);
      }
    }

    private void closeQuietly(Closeable closeable) {
      try {
        closeable.close();
      } catch (IOException | RuntimeException e) {
        // The stream is being thrown away.
      }
    }
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.RegistryCredentials;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * What the stage needs of a Docker engine, four operations that each mirror one docker CLI command
 * (after jib's {@code DockerClient}). The docker-java implementation is {@link DockerJavaEngine};
 * tests use fakes. No docker-java type crosses this interface.
 */
interface ImageEngine extends AutoCloseable {

  /**
   * {@code docker image inspect --format '{{.Id}}' REFERENCE}.
   *
   * @return the image's id, or empty when the engine has no such image
   */
  Optional<String> imageId(String reference) throws EngineException;

  /** {@code docker tag SOURCE TARGET}. */
  void tag(String source, ImageName.Target target) throws EngineException;

  /**
   * {@code docker push TARGET}: starts the push and returns at once. The engine's progress
   * messages, errors included, go to {@code listener} on another thread, in order.
   *
   * @param credentials the credentials to push with; empty for an anonymous push
   */
  RunningPush push(
      ImageName.Target target, Optional<RegistryCredentials> credentials, Consumer<PushMessage> listener)
      throws EngineException;

  /**
   * {@code docker rmi --no-prune REFERENCE}: removes the tag; the image's data goes only when no
   * other tag holds it. A missing tag is not an error.
   */
  void removeTag(String reference) throws EngineException;

  @Override
  void close();

  /** A push under way. */
  interface RunningPush {
    /**
     * Waits until the engine's message stream ends. Errors the engine reports <em>in</em> the stream
     * arrive as {@link PushMessage}s; this throws only when the stream itself fails.
     *
     * @throws InterruptedException when the calling thread is interrupted; the push is aborted
     * @throws EngineException when the connection to the engine fails
     */
    void await() throws EngineException, InterruptedException;

    /**
     * Stops the push: closes the connection to the engine, which cancels the push there. Safe to
     * call from any thread, more than once, before or after the push ends; {@link #await} then
     * returns.
     */
    void abort();

    /** True once {@link #abort} was called. */
    boolean aborted();
  }
}

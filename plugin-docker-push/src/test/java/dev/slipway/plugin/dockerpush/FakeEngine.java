package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.RegistryCredentials;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * An {@link ImageEngine} in memory: images by reference, and a script that says what each push
 * streams. Records every call.
 */
final class FakeEngine implements ImageEngine {
  private final Map<String, String> images = new HashMap<>();
  final List<String> calls = new CopyOnWriteArrayList<>();
  final List<Optional<RegistryCredentials>> pushCredentials = new CopyOnWriteArrayList<>();
  /** Attempt number (1-based) to the messages that push streams. */
  Function<Integer, List<PushMessage>> script = attempt -> success("sha256:" + "a".repeat(64));
  /** When set, pushes stream nothing and wait until aborted. */
  volatile boolean hang;
  volatile EngineException failRemove;
  private int pushes;

  synchronized FakeEngine image(String reference, String id) {
    images.put(reference, id);
    return this;
  }

  static List<PushMessage> success(String digest) {
    return List.of(
        PushMessage.status(null, "The push refers to repository [x]"),
        PushMessage.status("b88e8e63d0f5", "Preparing"),
        PushMessage.progress("b88e8e63d0f5", 512, 1024),
        PushMessage.status("b88e8e63d0f5", "Pushed"),
        PushMessage.status(null, "1: digest: " + digest + " size: 527"),
        PushMessage.digest(digest));
  }

  static List<PushMessage> failure(String message) {
    return List.of(
        PushMessage.status(null, "The push refers to repository [x]"),
        PushMessage.status("b88e8e63d0f5", "Preparing"),
        PushMessage.error(message, null));
  }

  synchronized int pushes() {
    return pushes;
  }

  @Override
  public synchronized Optional<String> imageId(String reference) {
    calls.add("inspect " + reference);
    return Optional.ofNullable(images.get(reference));
  }

  @Override
  public synchronized void tag(String source, ImageName.Target target) throws EngineException {
    calls.add("tag " + source + " " + target.reference());
    // Like the engine: the source is a name or an image id.
    String id = images.containsKey(source) ? images.get(source) : images.containsValue(source) ? source : null;
    if (id == null) {
      throw new EngineException(EngineException.Reason.NOT_FOUND, "No such image: " + source, null);
    }
    images.put(target.reference(), id);
  }

  @Override
  public RunningPush push(
      ImageName.Target target, Optional<RegistryCredentials> credentials, Consumer<PushMessage> listener) {
    int attempt;
    synchronized (this) {
      attempt = ++pushes;
    }
    calls.add("push " + target.reference());
    pushCredentials.add(credentials);
    CountDownLatch aborted = new CountDownLatch(1);
    List<PushMessage> messages = hang ? List.of() : new ArrayList<>(script.apply(attempt));
    return new RunningPush() {
      @Override
      public void await() throws InterruptedException {
        messages.forEach(listener);
        if (hang) {
          aborted.await();
        }
      }

      @Override
      public void abort() {
        aborted.countDown();
      }

      @Override
      public boolean aborted() {
        return aborted.getCount() == 0;
      }
    };
  }

  @Override
  public synchronized void removeTag(String reference) throws EngineException {
    calls.add("rmi " + reference);
    if (failRemove != null) {
      throw failRemove;
    }
    images.remove(reference);
  }

  /** The names the engine holds now, and their ids. */
  synchronized Map<String, String> names() {
    return Map.copyOf(images);
  }

  @Override
  public void close() {
    calls.add("close");
  }
}

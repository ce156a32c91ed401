package dev.slipway.plugin.dockerpush;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Counts the engine's own retries of layer uploads, which it announces as a countdown per layer
 * ({@code Retrying in 5 seconds}, {@code ... 4 seconds}, ...; Docker 20.10 tries 5 times, 5 s to
 * 20 s apart). A countdown that starts afresh is one more retry; when a layer is about to be tried
 * more than {@code retry.max-attempts} times, the push is aborted, so that the engine's retries are
 * bounded by the same setting as the stage's.
 */
final class EngineRetries {
  private static final Pattern ENGINE_RETRY = Pattern.compile("Retrying in (\\d+) seconds?");

  private final int maxAttempts;
  private final Map<String, Integer> countdowns = new ConcurrentHashMap<>();
  private final Map<String, Integer> perLayer = new ConcurrentHashMap<>();
  private final AtomicInteger total = new AtomicInteger();
  private final AtomicReference<String> exhaustedLayer = new AtomicReference<>();
  private final AtomicReference<ImageEngine.RunningPush> push = new AtomicReference<>();

  EngineRetries(int maxAttempts) {
    this.maxAttempts = maxAttempts;
  }

  void accept(PushMessage message) {
    Matcher retrying = ENGINE_RETRY.matcher(message.status());
    if (!retrying.matches() || message.layer().isEmpty()) {
      return;
    }
    String layer = message.layer().get();
    int seconds = Integer.parseInt(retrying.group(1));
    Integer before = countdowns.put(layer, seconds);
    if (before != null && seconds <= before) {
      return;
    }
    total.incrementAndGet();
    // Retry n means attempt n + 1 comes next.
    if (perLayer.merge(layer, 1, Integer::sum) + 1 > maxAttempts && exhaustedLayer.compareAndSet(null, layer)) {
      abort();
    }
  }

  void running(ImageEngine.RunningPush running) {
    push.set(running);
    if (exhausted()) {
      abort();
    }
  }

  private void abort() {
    ImageEngine.RunningPush p = push.get();
    if (p != null) {
      p.abort();
    }
  }

  boolean exhausted() {
    return exhaustedLayer.get() != null;
  }

  String layer() {
    return exhaustedLayer.get();
  }

  int count() {
    return total.get();
  }
}

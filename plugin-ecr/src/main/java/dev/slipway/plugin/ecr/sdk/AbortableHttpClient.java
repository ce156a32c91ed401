package dev.slipway.plugin.ecr.sdk;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import software.amazon.awssdk.http.ExecutableHttpRequest;
import software.amazon.awssdk.http.HttpExecuteRequest;
import software.amazon.awssdk.http.HttpExecuteResponse;
import software.amazon.awssdk.http.SdkHttpClient;

/**
 * An HTTP client that lets a cancelled job abort the request in flight. The SDK's synchronous
 * client makes each attempt's request on the calling thread, so the request is tied to the
 * {@link Call} that thread runs; {@link Call#abort()}, from any thread, closes its connection,
 * which unblocks a read that a thread interrupt would not. It also counts the attempts.
 */
final class AbortableHttpClient implements SdkHttpClient {
  private static final ThreadLocal<Call> CURRENT = new ThreadLocal<>();

  /** One SDK call: its attempts and the request in flight. */
  static final class Call {
    private final AtomicInteger attempts = new AtomicInteger();
    private volatile boolean aborted;
    private volatile ExecutableHttpRequest inFlight;

    /** Stops the call: the request in flight is aborted, and no further attempt starts. */
    void abort() {
      aborted = true;
      ExecutableHttpRequest request = inFlight;
      if (request != null) {
        request.abort();
      }
    }

    boolean aborted() {
      return aborted;
    }

    int attempts() {
      return attempts.get();
    }
  }

  private final SdkHttpClient delegate;

  AbortableHttpClient(SdkHttpClient delegate) {
    this.delegate = Objects.requireNonNull(delegate, "delegate");
  }

  /** Runs {@code body} (an SDK call) with its requests tied to {@code call}. */
  static <T> T within(Call call, Supplier<T> body) {
    CURRENT.set(call);
    try {
      return body.get();
    } finally {
      CURRENT.remove();
    }
  }

  @Override
  public ExecutableHttpRequest prepareRequest(HttpExecuteRequest request) {
    ExecutableHttpRequest prepared = delegate.prepareRequest(request);
    Call call = CURRENT.get();
    if (call == null) {
      return prepared;
    }
    call.attempts.incrementAndGet();
    return new ExecutableHttpRequest() {
      @Override
      public HttpExecuteResponse call() throws IOException {
        // Published before the check, so that abort() either sees it or is seen here.
        call.inFlight = prepared;
        if (call.aborted) {
          prepared.abort();
          throw new InterruptedIOException("the job was cancelled");
        }
        return prepared.call();
      }

      @Override
      public void abort() {
        prepared.abort();
      }
    };
  }

  @Override
  public String clientName() {
    return delegate.clientName();
  }

  @Override
  public void close() {
    delegate.close();
  }
}

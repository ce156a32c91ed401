package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * A {@link RecordingJobContext} whose {@link JobLog#lineStream()} hands on each line as soon as it
 * ends (the recording one keeps them until the stream closes), so that tests can see output
 * arrive while a build runs.
 */
final class StreamingJobContext implements JobContext {
  private final RecordingJobContext recording;

  StreamingJobContext(RecordingJobContext recording) {
    this.recording = recording;
  }

  @Override
  public String jobId() {
    return recording.jobId();
  }

  @Override
  public JobRequestView request() {
    return recording.request();
  }

  @Override
  public StageOptions options() {
    return recording.options();
  }

  @Override
  public void recordLeftover(String what) {
    recording.recordLeftover(what);
  }

  @Override
  public void processStarted(ProcessHandle process) {
    recording.processStarted(process);
  }

  /** What the stage recorded with {@link #recordLeftover}, in order. */
  List<String> leftovers() {
    return recording.leftovers();
  }

  @Override
  public Path workspace() {
    return recording.workspace();
  }

  @Override
  public <T> Optional<T> get(StageKey<T> key) {
    return recording.get(key);
  }

  @Override
  public <T> void publish(StageKey<T> key, T value) {
    recording.publish(key, value);
  }

  @Override
  public JobLog log() {
    JobLog log = recording.log();
    return new JobLog() {
      @Override
      public void line(String line) {
        log.line(line);
      }

      @Override
      public OutputStream lineStream() {
        return new OutputStream() {
          private final ByteArrayOutputStream current = new ByteArrayOutputStream();

          @Override
          public synchronized void write(int b) {
            if (b == '\n' || b == '\r') {
              flushLine();
            } else {
              current.write(b);
            }
          }

          private void flushLine() {
            if (current.size() > 0) {
              log.line(current.toString(StandardCharsets.UTF_8));
              current.reset();
            }
          }

          @Override
          public synchronized void close() {
            flushLine();
          }
        };
      }
    };
  }

  @Override
  public void addSecret(String secret) {
    recording.addSecret(secret);
  }

  @Override
  public boolean isCancelled() {
    return recording.isCancelled();
  }

  @Override
  public void onCancel(Runnable action) {
    recording.onCancel(action);
  }

  /** Cancels the job: runs the stage's cancel actions on this thread (no interrupt). */
  void cancel() {
    recording.cancel();
  }

  List<String> lines() {
    return recording.lines();
  }

  /** Every secret the stage or the request registered for masking. */
  java.util.Set<String> secrets() {
    return recording.secrets();
  }

  /** Waits until a logged line matches, and says whether one did. */
  boolean awaitLine(Predicate<String> match, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < end) {
      if (recording.lines().stream().anyMatch(match)) {
        return true;
      }
      Thread.sleep(20);
    }
    return false;
  }
}

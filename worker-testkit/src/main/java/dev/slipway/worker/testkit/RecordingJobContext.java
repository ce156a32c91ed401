package dev.slipway.worker.testkit;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.SecretBearing;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageOptions;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A {@link JobContext} for testing a stage without a worker: it records log lines and published
 * values and lets the test cancel the job. It masks nothing, so a test can check what a stage
 * would have leaked.
 */
public final class RecordingJobContext implements JobContext {
  private final JobRequestView request;
  private final Path workspace;
  private final Map<StageKey<?>, Object> values = new ConcurrentHashMap<>();
  private final List<String> lines = new CopyOnWriteArrayList<>();
  private final Set<String> secrets = ConcurrentHashMap.newKeySet();
  private final List<Runnable> cancelActions = new CopyOnWriteArrayList<>();
  private final List<String> leftovers = new CopyOnWriteArrayList<>();
  private final List<ProcessHandle> processes = new CopyOnWriteArrayList<>();
  private volatile boolean cancelled;
  private volatile StageOptions options = StageOptions.none();

  public RecordingJobContext(JobRequestView request, Path workspace) {
    this.request = request;
    this.workspace = workspace;
    request.token().map(Secret::reveal).ifPresent(this::addSecret);
  }

  /** A request with the given repository and image and defaults elsewhere. */
  public static JobRequestView request(String repoUrl, String branch, String token, String image) {
    return JobRequestView.builder(repoUrl, image).jobId("test-job")
        .branch(branch == null ? "" : branch)
        .token(token == null ? Optional.empty() : Optional.of(Secret.of(token)))
        .build();
  }

  /** Sets the options the stage under test sees in {@link #options()}. */
  public RecordingJobContext options(StageOptions options) {
    this.options = options;
    return this;
  }

  @Override
  public StageOptions options() {
    return options;
  }

  @Override
  public String jobId() {
    return request.jobId();
  }

  @Override
  public JobRequestView request() {
    return request;
  }

  @Override
  public Path workspace() {
    return workspace;
  }

  @Override
  public <T> Optional<T> get(StageKey<T> key) {
    return Optional.ofNullable(values.get(key)).map(key.type()::cast);
  }

  @Override
  public <T> void publish(StageKey<T> key, T value) {
    values.put(key, key.type().cast(value));
    if (value instanceof Secret s) {
      addSecret(s.reveal());
    } else if (value instanceof SecretBearing b) {
      b.secrets().forEach(s -> addSecret(s.reveal()));
    }
  }

  @Override
  public JobLog log() {
    return new JobLog() {
      @Override
      public void line(String line) {
        lines.addAll(List.of(line.split("\r\n|\r|\n", -1)));
      }

      @Override
      public OutputStream lineStream() {
        // Hands on each line as soon as it ends, as the worker does, so tests see output live.
        return new OutputStream() {
          private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();

          @Override
          public synchronized void write(int b) {
            if (b == '\n' || b == '\r') {
              flushLine();
            } else {
              buffer.write(b);
            }
          }

          @Override
          public synchronized void close() {
            flushLine();
          }

          private void flushLine() {
            if (buffer.size() > 0) {
              lines.add(buffer.toString(StandardCharsets.UTF_8));
              buffer.reset();
            }
          }
        };
      }
    };
  }

  @Override
  public void addSecret(String secret) {
    if (secret != null && !secret.isBlank()) {
      secrets.add(secret);
    }
  }

  @Override
  public boolean isCancelled() {
    return cancelled;
  }

  @Override
  public void onCancel(Runnable action) {
    if (cancelled) {
      action.run();
    } else {
      cancelActions.add(action);
    }
  }

  /** Keeps the record, as the runtime's state file would: see {@link #leftovers()}. */
  @Override
  public void recordLeftover(String what) {
    if (what == null || what.isEmpty() || what.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
      throw new IllegalArgumentException("a leftover record is one line of text: " + what);
    }
    leftovers.add(what);
  }

  @Override
  public void processStarted(ProcessHandle process) {
    processes.add(process);
  }

  /** What the stage recorded with {@link #recordLeftover}, in order. */
  public List<String> leftovers() {
    return List.copyOf(leftovers);
  }

  /** The processes the stage reported with {@link #processStarted}. */
  public List<ProcessHandle> processes() {
    return List.copyOf(processes);
  }

  /** Cancels the job: runs the cancel actions; interrupting the stage's thread is the test's job. */
  public void cancel() {
    cancelled = true;
    List<Runnable> actions = new ArrayList<>(cancelActions);
    cancelActions.clear();
    actions.forEach(Runnable::run);
  }

  /** Every line logged so far. */
  public List<String> lines() {
    return List.copyOf(lines);
  }

  /** Every secret the stage or the request registered. */
  public Set<String> secrets() {
    return Set.copyOf(secrets);
  }
}

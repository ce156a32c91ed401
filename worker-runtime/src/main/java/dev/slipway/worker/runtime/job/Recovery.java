package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.runtime.logging.Logging;
import dev.slipway.worker.runtime.pipeline.PipelineStage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * Start-up recovery: removes what the jobs of a worker that died (a crash, SIGKILL, a lost node)
 * left outside their workspaces, as their {@link JobStateFile}s name it, before the worker serves
 * or registers. For each state file, oldest first:
 *
 * <ol>
 *   <li>the recorded child processes still running with the same pid <em>and</em> start time
 *       are stopped with every process under them (a pid reused since is left alone);
 *   <li>each stage of the pipeline, in reverse order, gets what it recorded ({@link
 *       dev.slipway.worker.api.Stage#removeLeftovers}), each call within {@code
 *       worker.cleanup-timeout}; a stage that throws or runs out of time has its records kept
 *       for the next start, and the worker starts anyway;
 *   <li>the workspace is deleted, then the state file.
 * </ol>
 *
 * Workspaces that no state file names (an older worker's) are deleted after. Every thing removed
 * is logged at WARN with the job's id; nothing here stops the worker from starting.
 */
final class Recovery {
  private static final Logger LOG = LoggerFactory.getLogger(Recovery.class);
  /** After SIGTERM, how long a leftover process tree gets before SIGKILL. */
  private static final Duration KILL_GRACE = Duration.ofSeconds(1);

  private final Workspaces workspaces;
  private final List<PipelineStage> stages;
  private final Duration bound;

  /**
   * @param stages the pipeline's stages, which get their records back
   * @param bound how long one stage's removal may take ({@code worker.cleanup-timeout})
   */
  Recovery(Workspaces workspaces, List<PipelineStage> stages, Duration bound) {
    this.workspaces = workspaces;
    this.stages = List.copyOf(stages);
    this.bound = bound;
  }

  /** Handles every state file in the workspace root, then any workspace no file names. */
  void run() {
    for (Path file : workspaces.stateFiles()) {
      try {
        recover(file);
      } catch (RuntimeException e) {
        LOG.error("could not remove what the job of {} left: {}", file, e.toString());
      } finally {
        MDC.remove(Logging.JOB_ID);
        MDC.remove(Logging.STAGE);
      }
    }
    workspaces.removeLeftovers();
  }

  private void recover(Path file) {
    Path workspace = JobStateFile.workspaceOf(file).orElseThrow();
    JobStateFile.Contents contents;
    try {
      contents = JobStateFile.read(file);
    } catch (IOException e) {
      LOG.warn("cannot read {}: {}; removing the workspace it is about only", file, e.toString());
      contents = new JobStateFile.Contents("?", List.of(), List.of(), List.of());
    }
    String jobId = contents.jobId();
    MDC.put(Logging.JOB_ID, jobId);
    LOG.warn("job {} was not cleaned up after (its worker crashed or was killed, or a cleanup did"
            + " not finish); removing what it left ({}: {} process(es), {} stage record(s))", jobId, file,
        contents.processes().size(), contents.leftovers().size());
    if (!contents.malformed().isEmpty()) {
      LOG.warn("ignored {} line(s) of {} that this worker cannot read: {}",
          contents.malformed().size(), file, contents.malformed());
    }

    for (ProcessIdentity process : contents.processes()) {
      Optional<ProcessHandle> running = process.find();
      if (running.isEmpty()) {
        LOG.info("process {} of job {} has ended (or its pid belongs to another process now)",
            process.pid(), jobId);
        continue;
      }
      String what = ProcessIdentity.describe(running.get());
      List<String> under = running.get().descendants().map(ProcessIdentity::describe).toList();
      List<ProcessHandle> tree = ProcessIdentity.killTree(running.get(), KILL_GRACE);
      List<ProcessHandle> left = tree.stream().filter(ProcessIdentity::isRunning).toList();
      LOG.warn("killed process {} of job {} and the {} process(es) under it{}{}", what, jobId,
          tree.size() - 1, under.isEmpty() ? "" : " " + under, left.isEmpty() ? ""
              : "; still running: " + left.stream().map(ProcessHandle::pid).toList());
    }

    Map<String, List<String>> byStage = new LinkedHashMap<>();
    contents.leftovers().forEach(l ->
        byStage.computeIfAbsent(l.stage(), s -> new ArrayList<>()).add(l.what()));
    List<JobStateFile.Leftover> keep = new ArrayList<>();
    for (int i = stages.size() - 1; i >= 0; i--) {
      PipelineStage stage = stages.get(i);
      List<String> records = byStage.remove(stage.id());
      if (records == null) {
        continue;
      }
      if (!removeLeftovers(stage, jobId, records)) {
        records.forEach(r -> keep.add(new JobStateFile.Leftover(stage.id(), r)));
      }
    }
    byStage.forEach((stage, records) -> LOG.warn("left as they are, since stage '{}' is not in"
        + " worker.pipeline now: {}", stage, records));

    try {
      if (java.nio.file.Files.exists(workspace, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
        Workspaces.delete(workspace);
        LOG.warn("removed workspace {} of job {}", workspace, jobId);
      }
    } catch (IOException e) {
      LOG.warn("cannot delete workspace {} of job {}: {}", workspace, jobId, e.toString());
    }
    try {
      JobStateFile.rewrite(file, jobId, keep);
      if (!keep.isEmpty()) {
        LOG.warn("kept {} record(s) of job {} in {} for the next start to try again", keep.size(),
            jobId, file);
      }
    } catch (IOException e) {
      LOG.warn("cannot update {}: {}", file, e.toString());
    }
  }

  /** Hands {@code stage} its records, within the bound; true when it returned normally. */
  private boolean removeLeftovers(PipelineStage stage, String jobId, List<String> records) {
    AtomicReference<Throwable> failure = new AtomicReference<>();
    JobLog log = new StageLog(jobId, stage.id());
    Thread thread = new Thread(() -> {
      MDC.put(Logging.JOB_ID, jobId);
      MDC.put(Logging.STAGE, stage.id());
      try {
        stage.stage().removeLeftovers(List.copyOf(records), log);
      } catch (Throwable t) {
        failure.set(t);
      } finally {
        MDC.clear();
      }
    }, "recovery-" + stage.id());
    thread.setDaemon(true);
    thread.start();
    try {
      thread.join(bound.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (thread.isAlive()) {
      thread.interrupt();
      LOG.warn("stage '{}' did not remove what job {} left within {} (worker.cleanup-timeout);"
          + " its records are kept for the next start", stage.id(), jobId,
          JobExecution.human(bound));
      return false;
    }
    if (failure.get() != null) {
      LOG.warn("stage '{}' could not remove everything job {} left: {}; its records are kept for"
          + " the next start", stage.id(), jobId, failure.get().toString());
      return false;
    }
    return true;
  }

  /** A stage's lines during recovery: the worker's log, at WARN, with the job and the stage. */
  private static final class StageLog implements JobLog {
    private final String jobId;
    private final String stage;

    StageLog(String jobId, String stage) {
      this.jobId = jobId;
      this.stage = stage;
    }

    @Override
    public void line(String line) {
      for (String part : line.split("\r\n|\r|\n", -1)) {
        emit(part);
      }
    }

    @Override
    public OutputStream lineStream() {
      return new LineSplitter(s -> s, this::emit);
    }

    private void emit(String line) {
      Map<String, String> previous = MDC.getCopyOfContextMap();
      MDC.put(Logging.JOB_ID, jobId);
      MDC.put(Logging.STAGE, stage);
      try {
        LOG.warn("{}", line);
      } finally {
        if (previous == null) {
          MDC.clear();
        } else {
          MDC.setContextMap(previous);
        }
      }
    }
  }
}

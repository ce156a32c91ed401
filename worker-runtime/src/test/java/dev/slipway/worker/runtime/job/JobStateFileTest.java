package dev.slipway.worker.runtime.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.runtime.config.Limits;
import dev.slipway.worker.runtime.pipeline.Pipeline;
import dev.slipway.worker.runtime.pipeline.PipelineStage;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job state file: written before the thing it names is made, in the workspace root but never
 * taken for a workspace, gone after a job that ended normally, kept (and finished by the next
 * start) after one whose cleanup could not finish, and never holding a secret.
 */
class JobStateFileTest {
  private static final String TOKEN = "ghp_stateFileToken0123456789abcdef";
  private static final String SECRET_VALUE = "npm-secret-value-9f8e7d6c";

  @TempDir Path dir;
  JobManager jobs;
  final List<Process> started = new CopyOnWriteArrayList<>();

  @AfterEach
  void stop() {
    if (jobs != null) {
      jobs.close();
    }
    started.forEach(Process::destroyForcibly);
  }

  /** A stage that records, checks the file, starts a process, and makes what it recorded. */
  final class RecordingStage implements Stage {
    final List<String> seenInFile = new CopyOnWriteArrayList<>();
    final List<List<String>> handedBack = new CopyOnWriteArrayList<>();
    volatile Path made;
    volatile boolean hangInCleanup;

    @Override
    public void execute(JobContext context) throws StageException {
      Path thing = dir.resolve("outside-" + context.jobId());
      context.recordLeftover("dir " + thing);
      // The record is on disk before the thing exists.
      seenInFile.addAll(lines(stateFile(context.workspace())));
      assertFalse(Files.exists(thing));
      try {
        Files.createDirectory(thing);
        Process p = new ProcessBuilder("sleep", "300").start();
        started.add(p);
        context.processStarted(p.toHandle());
      } catch (java.io.IOException e) {
        throw new IllegalStateException(e);
      }
      made = thing;
    }

    @Override
    public void cleanup(JobContext context) {
      if (hangInCleanup) {
        try {
          Thread.sleep(60_000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }

    @Override
    public void removeLeftovers(List<String> recorded, JobLog log) {
      handedBack.add(List.copyOf(recorded));
      for (String r : recorded) {
        Path p = Path.of(r.substring("dir ".length()));
        try {
          Files.deleteIfExists(p);
          log.line("removed " + p);
        } catch (java.io.IOException e) {
          throw new IllegalStateException(e);
        }
      }
    }
  }

  private JobManager manager(RecordingStage stage, Duration cleanupTimeout) {
    Pipeline pipeline = new Pipeline(List.of(new PipelineStage("recorder",
        new DiscoveredStage("recorder", null, "test", "1", "test"), stage, Duration.ofMinutes(1))));
    return new JobManager("w", pipeline, new Workspaces(dir.resolve("workspaces")), 1,
        Duration.ofMinutes(1), JobListener.NONE, List.of(), Limits.defaults(),
        Duration.ofSeconds(1), cleanupTimeout);
  }

  private static JobRequestView request(String jobId) {
    return new JobRequestView(jobId, "https://git.example.test/acme/app.git", "",
        Optional.of(Secret.of(TOKEN)), "acme/app:1", "Dockerfile", ".", Map.of("A", "b"),
        Map.of("npmrc", Secret.of(SECRET_VALUE)));
  }

  private static Path stateFile(Path workspace) {
    return workspace.resolveSibling("." + workspace.getFileName() + ".state");
  }

  private static List<String> lines(Path file) {
    try {
      return Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private List<Path> rootEntries() throws Exception {
    try (Stream<Path> s = Files.list(dir.resolve("workspaces"))) {
      return s.filter(p -> !p.getFileName().toString().equals(".slipway.lock")).toList();
    }
  }

  @Test
  void recordsAreOnDiskBeforeTheThingAndTheFileGoesWithANormalEnd() throws Exception {
    RecordingStage stage = new RecordingStage();
    jobs = manager(stage, Duration.ofSeconds(30));
    JobResult result = jobs.submit(request("state-normal"), JobListener.NONE).result()
        .get(30, TimeUnit.SECONDS);
    assertEquals(JobOutcome.SUCCEEDED, result.outcome(), result.message());

    List<String> seen = stage.seenInFile;
    assertEquals(JobStateFile.HEADER, seen.get(0));
    assertEquals("job state-normal", seen.get(1));
    assertEquals("leftover recorder dir " + stage.made, seen.get(2));
    assertTrue(Files.exists(stage.made), "the stage made it after recording it");
    assertEquals(List.of(), rootEntries(), "workspace and state file are gone");
  }

  @Test
  void aJobWhoseCleanupCannotFinishKeepsItsFileAndTheNextStartFinishesIt() throws Exception {
    RecordingStage stage = new RecordingStage();
    stage.hangInCleanup = true;
    jobs = manager(stage, Duration.ofMillis(300));
    JobResult result = jobs.submit(request("state-kept"), JobListener.NONE).result()
        .get(30, TimeUnit.SECONDS);
    assertEquals(JobOutcome.SUCCEEDED, result.outcome(), result.message());
    List<Path> left = rootEntries();
    assertEquals(1, left.size(), left.toString());
    Path file = left.get(0);
    String name = file.getFileName().toString();
    assertTrue(name.startsWith(".job-state-kept-") && name.endsWith(".state"), name);

    String text = Files.readString(file);
    assertFalse(text.contains(TOKEN), "no token: " + text);
    assertFalse(text.contains(SECRET_VALUE), "no build secret: " + text);
    Process sleeper = started.get(0);
    assertTrue(text.contains("process " + sleeper.pid() + " "), text);
    JobStateFile.Contents contents = JobStateFile.read(file);
    assertEquals("state-kept", contents.jobId());
    assertEquals(List.of(new JobStateFile.Leftover("recorder", "dir " + stage.made)),
        contents.leftovers());
    assertEquals(sleeper.pid(), contents.processes().get(0).pid());
    assertEquals(List.of(), contents.malformed());

    // The next start (same root): the process tree dies, the stage gets its records back, the
    // file goes; a workspace without a file (an older worker's) goes too.
    Path stray = Files.createDirectory(dir.resolve("workspaces").resolve("job-older-1"));
    jobs.close();
    RecordingStage next = new RecordingStage();
    jobs = manager(next, Duration.ofSeconds(10));
    jobs.removeLeftovers();
    assertTrue(sleeper.waitFor(5, TimeUnit.SECONDS), "the recorded process was killed");
    assertEquals(List.of(List.of("dir " + stage.made)), next.handedBack);
    assertFalse(Files.exists(stage.made));
    assertFalse(Files.exists(stray));
    assertEquals(List.of(), rootEntries());
  }

  @Test
  void aRecordedPidThatAnotherProcessHasNowIsLeftAlone() throws Exception {
    Process bystander = new ProcessBuilder("sleep", "300").start();
    started.add(bystander);
    Path root = Files.createDirectories(dir.resolve("workspaces"));
    Path file = root.resolve(".job-reused-1.state");
    // Same pid, another start time: the pid was reused since the crash.
    Files.writeString(file, JobStateFile.HEADER + "\njob reused\nprocess " + bystander.pid()
        + " linux:00000000-0000-0000-0000-000000000000:1\nprocess " + bystander.pid()
        + " instant:1\nleftover gone-stage dir /nowhere\nprocess 12");
    RecordingStage stage = new RecordingStage();
    jobs = manager(stage, Duration.ofSeconds(10));
    jobs.removeLeftovers();
    assertTrue(bystander.isAlive(), "a process with a reused pid is not killed");
    assertEquals(List.of(), stage.handedBack, "records of another stage are not handed over");
    assertFalse(Files.exists(file));
  }

  @Test
  void aTornLastLineIsIgnoredAndRecordsMustBeOneLine() throws Exception {
    Path root = Files.createDirectories(dir.resolve("workspaces"));
    Path file = root.resolve(".job-torn-1.state");
    Files.writeString(file, JobStateFile.HEADER + "\njob torn\nleftover recorder dir /a\nleftover rec");
    JobStateFile.Contents contents = JobStateFile.read(file);
    assertEquals(List.of(new JobStateFile.Leftover("recorder", "dir /a")), contents.leftovers());
    assertEquals(1, contents.malformed().size());

    JobStateFile state = JobStateFile.create(root.resolve("job-x-1"), "x");
    for (String bad : List.of("", "two\nlines", "cr\rhere", "x".repeat(4097), "nul\0")) {
      assertThrows(IllegalArgumentException.class, () -> state.recordLeftover("recorder", bad),
          bad);
    }
    assertEquals(JobStateFile.HEADER + "\njob x\n", Files.readString(state.file()));
    assertTrue(JobStateFile.workspaceOf(state.file()).orElseThrow().endsWith("job-x-1"));
    assertEquals(Optional.empty(), JobStateFile.workspaceOf(root.resolve("job-x-1")),
        "a workspace is not a state file");
    List<String> kinds = new ArrayList<>();
    new Workspaces(root).stateFiles().forEach(p -> kinds.add(p.getFileName().toString()));
    assertEquals(List.of(".job-torn-1.state", ".job-x-1.state"), kinds);
  }
}

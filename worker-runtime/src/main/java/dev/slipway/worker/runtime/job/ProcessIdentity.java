package dev.slipway.worker.runtime.job;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A process as a later worker can tell it apart from one that got its pid since: the pid and when
 * the process started. On Linux the start is the kernel's own ({@code /proc/<pid>/stat} field 22,
 * clock ticks since boot) with the boot's id, exact and never equal across a reboot; elsewhere it
 * is {@link ProcessHandle.Info#startInstant()} to the millisecond.
 *
 * @param pid the process id
 * @param start {@code linux:<boot id>:<ticks>} or {@code instant:<epoch millis>}
 */
record ProcessIdentity(long pid, String start) {
  private static final Path PROC = Path.of("/proc");
  private static final Path BOOT_ID = Path.of("/proc/sys/kernel/random/boot_id");
  private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  /** The identity of {@code process}, or empty when it has already gone. */
  static Optional<ProcessIdentity> of(ProcessHandle process) {
    Optional<String> start = startOf(process.pid());
    if (start.isEmpty() || !process.isAlive()) {
      return Optional.empty();
    }
    return Optional.of(new ProcessIdentity(process.pid(), start.get()));
  }

  /** Parses {@code <pid> <start>} as {@link #toString()} writes it; empty when malformed. */
  static Optional<ProcessIdentity> parse(String text) {
    String[] parts = text.strip().split(" ");
    if (parts.length < 2 || !(parts[1].startsWith("linux:") || parts[1].startsWith("instant:"))) {
      return Optional.empty();
    }
    try {
      long pid = Long.parseLong(parts[0]);
      return pid > 1 ? Optional.of(new ProcessIdentity(pid, parts[1])) : Optional.empty();
    } catch (NumberFormatException e) {
      return Optional.empty();
    }
  }

  /** The process that has this identity now: same pid and same start; empty when it is gone. */
  Optional<ProcessHandle> find() {
    Optional<ProcessHandle> handle = ProcessHandle.of(pid);
    if (handle.isEmpty() || !startOf(pid).map(start::equals).orElse(false)
        || !isRunning(handle.get())) {
      return Optional.empty();
    }
    return handle;
  }

  /**
   * Stops the process and every process under it now: SIGTERM to all, deepest first, then
   * SIGKILL to what still runs after {@code grace}; waits at most {@code grace} plus two seconds.
   *
   * @return the processes that were running when it started, root last
   */
  static List<ProcessHandle> killTree(ProcessHandle root, Duration grace) {
    List<ProcessHandle> tree = new ArrayList<>(root.descendants().toList());
    tree.add(root);
    List<ProcessHandle> running = tree.stream().filter(ProcessIdentity::isRunning).toList();
    for (int i = running.size() - 1; i >= 0; i--) {
      running.get(i).destroy();
    }
    long start = System.nanoTime();
    boolean forced = false;
    while (running.stream().anyMatch(ProcessIdentity::isRunning)
        && System.nanoTime() - start < grace.plusSeconds(2).toNanos()) {
      if (!forced && System.nanoTime() - start >= grace.toNanos()) {
        forced = true;
        // New children of the tree since the SIGTERM (a shell's trap) go too.
        root.descendants().filter(p -> !running.contains(p)).forEach(ProcessHandle::destroyForcibly);
        running.forEach(ProcessHandle::destroyForcibly);
      }
      LockSupport.parkNanos(POLL_NANOS);
    }
    return running;
  }

  /** A one-line description for the log: pid, command and start, no arguments. */
  static String describe(ProcessHandle p) {
    ProcessHandle.Info info = p.info();
    return p.pid() + " (" + info.command().orElse("?") + ", started "
        + info.startInstant().map(Instant::toString).orElse("?") + ")";
  }

  @Override
  public String toString() {
    return pid + " " + start;
  }

  /** True when {@code p} runs: alive and not a zombie waiting for a parent that never reaps. */
  static boolean isRunning(ProcessHandle p) {
    if (!p.isAlive()) {
      return false;
    }
    if (!Files.isDirectory(PROC)) {
      return true;
    }
    return stat(p.pid()).map(fields -> {
      char state = fields.isEmpty() ? 'R' : fields.get(0).charAt(0);
      return state != 'Z' && state != 'X' && state != 'x';
    }).orElse(false);
  }

  private static Optional<String> startOf(long pid) {
    if (Files.isDirectory(PROC)) {
      Optional<String> boot = bootId();
      Optional<List<String>> fields = stat(pid);
      if (boot.isPresent() && fields.isPresent() && fields.get().size() > 19) {
        // After "pid (comm)": state is field 3, starttime field 22.
        return Optional.of("linux:" + boot.get() + ":" + fields.get().get(19));
      }
      if (fields.isEmpty()) {
        return Optional.empty();
      }
    }
    return ProcessHandle.of(pid).flatMap(h -> h.info().startInstant())
        .map(i -> "instant:" + i.toEpochMilli());
  }

  /** The fields of {@code /proc/<pid>/stat} after the command name; empty when there is none. */
  private static Optional<List<String>> stat(long pid) {
    try {
      String text = Files.readString(PROC.resolve(Long.toString(pid)).resolve("stat"),
          StandardCharsets.UTF_8);
      // The command name may hold spaces and parentheses: the fields start after the last ')'.
      int end = text.lastIndexOf(')');
      if (end < 0) {
        return Optional.empty();
      }
      return Optional.of(List.of(text.substring(end + 1).strip().split(" +")));
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  private static Optional<String> bootId() {
    try {
      String id = Files.readString(BOOT_ID, StandardCharsets.UTF_8).strip();
      return id.matches("[0-9a-f-]{8,64}") ? Optional.of(id) : Optional.empty();
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }
}

package dev.slipway.plugin.buildkit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A child process and every process it starts, stopped together: SIGTERM to all of them, SIGKILL to
 * what still runs after a grace period. Descendants are remembered as they are seen, so a process
 * whose parent has already died (and that was re-parented away from the tree) is still stopped.
 */
final class ProcessTree {
  private static final Path PROC = Path.of("/proc");
  private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  private final ProcessHandle root;
  private final Set<ProcessHandle> seen = new LinkedHashSet<>();
  private final Set<ProcessHandle> terminated = new HashSet<>();

  ProcessTree(ProcessHandle root) {
    this.root = root;
    seen.add(root);
  }

  /**
   * Stops the tree and waits until none of it runs. Safe to call from several threads and more
   * than once: a second caller waits for the first and then checks again. Does not throw on
   * interruption; the interrupt flag is kept.
   *
   * @param grace how long to wait after SIGTERM before SIGKILL
   * @param limit how long to try in all
   * @return the processes that still run after {@code limit} (normally none)
   */
  synchronized List<ProcessHandle> kill(Duration grace, Duration limit) {
    boolean interrupted = Thread.interrupted();
    try {
      long start = System.nanoTime();
      while (true) {
        collect();
        List<ProcessHandle> running = new ArrayList<>();
        for (ProcessHandle p : seen) {
          if (isRunning(p)) {
            running.add(p);
          }
        }
        long elapsed = System.nanoTime() - start;
        if (running.isEmpty() || elapsed >= limit.toNanos()) {
          return running;
        }
        boolean force = elapsed >= grace.toNanos();
        // Deepest first: a child dies before its parent can react to the parent's own signal.
        for (int i = running.size() - 1; i >= 0; i--) {
          ProcessHandle p = running.get(i);
          if (force) {
            p.destroyForcibly();
          } else if (terminated.add(p)) {
            p.destroy();
          }
        }
        LockSupport.parkNanos(POLL_NANOS);
        Thread.interrupted(); // a pending interrupt would end every park at once
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Every process of the tree that runs now, for tests and diagnostics. */
  synchronized List<ProcessHandle> running() {
    collect();
    return seen.stream().filter(ProcessTree::isRunning).toList();
  }

  private void collect() {
    for (ProcessHandle p : List.copyOf(seen)) {
      if (p.isAlive()) {
        p.descendants().forEach(seen::add);
      }
    }
  }

  /**
   * True when {@code p} runs. A zombie does not: it has exited and waits for a parent to reap it,
   * which on some machines (a PID 1 that never reaps) never happens.
   */
  static boolean isRunning(ProcessHandle p) {
    if (!p.isAlive()) {
      return false;
    }
    if (!Files.isDirectory(PROC)) {
      return true; // not Linux: isAlive is all there is
    }
    try {
      String text = Files.readString(PROC.resolve(Long.toString(p.pid())).resolve("stat"), StandardCharsets.UTF_8);
      // pid (comm) state ...; comm may contain spaces and parentheses, so look for the last ')'.
      int end = text.lastIndexOf(')');
      if (end < 0 || end + 2 >= text.length()) {
        return true;
      }
      char state = text.charAt(end + 2);
      return state != 'Z' && state != 'X' && state != 'x';
    } catch (IOException e) {
      return false; // gone between the two checks
    }
  }
}

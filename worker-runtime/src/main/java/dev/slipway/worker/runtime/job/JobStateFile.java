package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.runtime.errors.ErrorMapping;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One job's record of what it leaves outside its workspace, so that a worker started after a
 * crash can remove it ({@link Recovery}). It lives in the workspace root beside the workspace,
 * {@code .job-<id>-<hex>.state} for {@code job-<id>-<hex>/}, and is made before the workspace.
 * Every record is appended and forced to disk before the thing it names is made, so that what a
 * crash leaves is always named in it; it is deleted when the job has ended and its cleanups ran.
 *
 * <p>The format, UTF-8 text, one record a line, each ending with {@code \n}:
 *
 * <pre>
 * slipway-job-state 1
 * job &lt;job id&gt;
 * process &lt;pid&gt; &lt;start&gt;          a child process reported to processStarted ({@link ProcessIdentity})
 * leftover &lt;stage id&gt; &lt;what&gt;     what a stage recorded with recordLeftover
 * </pre>
 *
 * A last line without its {@code \n} is a write a crash cut short; what it was to name was never
 * made, and it is ignored. Lines of kinds this version does not know are ignored too. Only names,
 * paths and process ids are written, never a secret.
 */
final class JobStateFile {
  private static final Logger LOG = LoggerFactory.getLogger(JobStateFile.class);

  static final String HEADER = "slipway-job-state 1";
  /** A state file's name: {@code .<workspace name>.state}. */
  static final String SUFFIX = ".state";
  /** The longest record a stage may write. */
  static final int MAX_RECORD = 4096;
  /** The largest a state file may grow: a stage that records in a loop cannot fill the disk. */
  static final long MAX_SIZE = 1 << 20;

  private static final Pattern STAGE_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");

  private final Path file;
  private final Path workspace;
  private long size;
  private boolean failed;

  private JobStateFile(Path file, Path workspace, long size) {
    this.file = file;
    this.workspace = workspace;
    this.size = size;
  }

  /** The state file of the workspace {@code workspace}. */
  static Path fileOf(Path workspace) {
    return workspace.resolveSibling("." + workspace.getFileName() + SUFFIX);
  }

  /** The workspace a state file is about, from its name alone; empty when it names none. */
  static Optional<Path> workspaceOf(Path stateFile) {
    String name = stateFile.getFileName().toString();
    if (!name.startsWith("." + Workspaces.PREFIX) || !name.endsWith(SUFFIX)) {
      return Optional.empty();
    }
    String dir = name.substring(1, name.length() - SUFFIX.length());
    return dir.contains("/") || dir.isEmpty() ? Optional.empty()
        : Optional.of(stateFile.resolveSibling(dir));
  }

  /**
   * Makes the state file of {@code workspace} (which does not exist yet), with its header, on disk
   * (the file and its directory entry) before it returns.
   */
  static JobStateFile create(Path workspace, String jobId) throws IOException {
    Path file = fileOf(workspace);
    String text = HEADER + "\njob " + jobId + "\n";
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    try (FileChannel channel = open(file, StandardOpenOption.CREATE_NEW)) {
      write(channel, bytes);
      channel.force(true);
    }
    forceDirectory(file.getParent());
    return new JobStateFile(file, workspace, bytes.length);
  }

  /** The file. */
  Path file() {
    return file;
  }

  /** The job's workspace, which the file names. */
  Path workspace() {
    return workspace;
  }

  /**
   * Records what stage {@code stage} is about to leave outside the workspace.
   *
   * @throws StageException {@code worker.workspace-failed} when it cannot be written
   */
  void recordLeftover(String stage, String what) throws StageException {
    if (!STAGE_ID.matcher(stage).matches()) {
      throw new IllegalStateException("recordLeftover outside a stage");
    }
    checkRecord(what);
    try {
      append("leftover " + stage + " " + what);
    } catch (IOException e) {
      throw new StageException(ErrorMapping.WORKSPACE, ErrorKind.INTERNAL,
          "cannot note what the job leaves outside its workspace in " + file + ": " + e, e);
    }
  }

  /** Records a child process; a failure is logged (once) and the job goes on. */
  void recordProcess(ProcessHandle process) {
    Optional<ProcessIdentity> identity = ProcessIdentity.of(process);
    if (identity.isEmpty()) {
      return; // already gone: nothing to leave behind
    }
    try {
      append("process " + identity.get());
    } catch (IOException e) {
      synchronized (this) {
        if (!failed) {
          failed = true;
          LOG.warn("cannot note process {} in {}: {}; a crash would leave it running",
              process.pid(), file, e.toString());
        }
      }
    }
  }

  /** Deletes the file: the job is over and nothing it recorded is left. */
  void delete() {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      LOG.warn("cannot delete {}: {}", file, e.toString());
    }
  }

  /** Why {@code what} cannot be a record, as an {@link IllegalArgumentException}. */
  static void checkRecord(String what) {
    if (what == null || what.isEmpty() || what.length() > MAX_RECORD) {
      throw new IllegalArgumentException("a leftover record must be 1 to " + MAX_RECORD
          + " characters long");
    }
    for (int i = 0; i < what.length(); i++) {
      char c = what.charAt(i);
      if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\u2028' || c == '\u2029') {
        throw new IllegalArgumentException("a leftover record may not hold control characters or"
            + " line breaks (character " + i + ")");
      }
    }
  }

  private synchronized void append(String record) throws IOException {
    byte[] bytes = (record + "\n").getBytes(StandardCharsets.UTF_8);
    if (size + bytes.length > MAX_SIZE) {
      throw new IOException("the state file would grow past " + MAX_SIZE + " bytes");
    }
    try (FileChannel channel = open(file, StandardOpenOption.APPEND)) {
      write(channel, bytes);
      channel.force(false);
    }
    size += bytes.length;
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * What a state file says.
   *
   * @param jobId the job's id ({@code ?} when the file lost its header)
   * @param processes the child processes, in the order reported
   * @param leftovers each stage's records, in the order recorded
   * @param malformed lines that could not be read (torn, unknown), for the log
   */
  record Contents(String jobId, List<ProcessIdentity> processes, List<Leftover> leftovers,
      List<String> malformed) {}

  /** One stage's record. */
  record Leftover(String stage, String what) {}

  /** Reads a state file; lines it cannot read are collected, never fatal. */
  static Contents read(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    String jobId = "?";
    List<ProcessIdentity> processes = new ArrayList<>();
    List<Leftover> leftovers = new ArrayList<>();
    List<String> malformed = new ArrayList<>();
    int end = text.lastIndexOf('\n');
    if (end < text.length() - 1) {
      malformed.add("(a last record the crash cut short)");
    }
    for (String line : text.substring(0, end + 1).split("\n")) {
      if (line.isEmpty() || line.equals(HEADER)) {
        continue;
      }
      int space = line.indexOf(' ');
      String kind = space < 0 ? line : line.substring(0, space);
      String rest = space < 0 ? "" : line.substring(space + 1);
      switch (kind) {
        case "job" -> jobId = rest;
        case "process" -> ProcessIdentity.parse(rest).ifPresentOrElse(processes::add,
            () -> malformed.add(line));
        case "leftover" -> {
          int split = rest.indexOf(' ');
          if (split > 0 && STAGE_ID.matcher(rest.substring(0, split)).matches()) {
            leftovers.add(new Leftover(rest.substring(0, split), rest.substring(split + 1)));
          } else {
            malformed.add(line);
          }
        }
        default -> malformed.add(line);
      }
    }
    return new Contents(jobId, processes, leftovers, malformed);
  }

  /**
   * Replaces {@code file} (atomically) with one that holds only {@code keep}, for a later start
   * to try again; deletes it when {@code keep} is empty.
   */
  static void rewrite(Path file, String jobId, List<Leftover> keep) throws IOException {
    if (keep.isEmpty()) {
      Files.deleteIfExists(file);
      return;
    }
    StringBuilder text = new StringBuilder(HEADER).append("\njob ").append(jobId).append('\n');
    keep.forEach(l -> text.append("leftover ").append(l.stage()).append(' ').append(l.what())
        .append('\n'));
    Path temp = file.resolveSibling(file.getFileName() + ".new");
    Files.deleteIfExists(temp);
    try (FileChannel channel = open(temp, StandardOpenOption.CREATE_NEW)) {
      write(channel, text.toString().getBytes(StandardCharsets.UTF_8));
      channel.force(true);
    }
    Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    forceDirectory(file.getParent());
  }

  private static FileChannel open(Path file, StandardOpenOption how) throws IOException {
    if (how == StandardOpenOption.CREATE_NEW) {
      try {
        return FileChannel.open(file, java.util.Set.of(how, StandardOpenOption.WRITE),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      } catch (UnsupportedOperationException e) {
        return FileChannel.open(file, how, StandardOpenOption.WRITE);
      }
    }
    return FileChannel.open(file, how, StandardOpenOption.WRITE);
  }

  private static void write(FileChannel channel, byte[] bytes) throws IOException {
    ByteBuffer buffer = ByteBuffer.wrap(bytes);
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }

  /** Forces a directory's entries to disk, so a new file survives a power loss too. */
  private static void forceDirectory(Path dir) {
    try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
      channel.force(true);
    } catch (IOException | UnsupportedOperationException e) {
      // Not every platform can open a directory; the file itself is on disk.
    } catch (RuntimeException e) {
      LOG.debug("cannot force {}: {}", dir, e.toString());
    }
  }
}

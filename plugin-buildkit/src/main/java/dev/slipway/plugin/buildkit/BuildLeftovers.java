package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.WorkerEnvironment;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What a build leaves outside the job's workspace, how the stage notes it before making it
 * ({@link JobContext#recordLeftover}) and how a worker started after a crash removes it. Records,
 * names and paths only:
 *
 * <ul>
 *   <li>{@code build <unique name>}: build.sh is about to start; every process of the build
 *       carries that name in its arguments (build.sh's own, the docker CLI's {@code --iidfile});
 *       the runtime kills build.sh's tree by pid too, this covers the moment between the start
 *       and the pid's record, and processes that left the tree;
 *   <li>{@code image slipway.local/<job>-<hex>:build}: the private name the build tags;
 *   <li>{@code dir <path>}: a temporary directory of the build ({@code slipway-buildkit-<hex>},
 *       build.sh's TMPDIR and HOME), of its secrets ({@code slipway-secrets-<hex>}) or of its
 *       private Docker config with a registry's credentials ({@code slipway-dockercfg-<hex>});
 *       paths only, the values are never in a record.
 * </ul>
 *
 * Recovery removes only what looks like its own: a {@code slipway.local/} name, a directory whose
 * name has one of the three prefixes and 16 hex digits and is no symbolic link, processes whose
 * arguments carry the unique name ({@code slipway-<job>-<8 hex>}).
 */
final class BuildLeftovers {
  static final String BUILD = "build ";
  static final String IMAGE = "image ";
  static final String DIR = "dir ";
  static final String BUILD_DIR_PREFIX = "slipway-buildkit-";
  static final String SECRETS_DIR_PREFIX = "slipway-secrets-";
  static final String DOCKER_CONFIG_DIR_PREFIX = "slipway-dockercfg-";

  private static final Pattern OWN_DIR =
      Pattern.compile("(" + BUILD_DIR_PREFIX + "|" + SECRETS_DIR_PREFIX + "|" + DOCKER_CONFIG_DIR_PREFIX
          + ")[0-9a-f]{16}");
  private static final Pattern UNIQUE_NAME = Pattern.compile("slipway-[A-Za-z0-9._-]+-[0-9a-f]{8}");
  private static final File DEV_NULL = new File("/dev/null");
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Duration KILL_GRACE = Duration.ofMillis(800);
  private static final Duration KILL_LIMIT = Duration.ofSeconds(3);
  private static final long RMI_SECONDS = 30;

  private final BuildkitSettings settings;
  private final WorkerEnvironment environment;

  BuildLeftovers(BuildkitSettings settings, WorkerEnvironment environment) {
    this.settings = settings;
    this.environment = environment;
  }

  /**
   * A new directory {@code <java.io.tmpdir>/<prefix><16 hex>}, mode 0700, noted in the job's
   * state before it is made.
   */
  static Path createDir(JobContext context, String prefix) throws StageException {
    byte[] random = new byte[8];
    RANDOM.nextBytes(random);
    Path dir = Path.of(System.getProperty("java.io.tmpdir")).toAbsolutePath().normalize()
        .resolve(prefix + HexFormat.of().formatHex(random));
    context.recordLeftover(DIR + dir);
    try {
      // createDirectory, not createDirectories: an existing file or link there is an error.
      return Files.createDirectory(dir,
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    } catch (IOException | UnsupportedOperationException e) {
      throw new StageException(
          BuildkitErrors.TMP_FAILED, "cannot create a temporary directory " + dir + ": " + e, e);
    }
  }

  /** What {@code docker rmi} did with a name. */
  enum Removal { REMOVED, ABSENT, FAILED, UNREACHABLE }

  /**
   * The outcome of {@link #removeImage}.
   *
   * @param removal what happened
   * @param detail the CLI's output when it failed
   */
  record RemoveResult(Removal removal, String detail) {}

  /** {@code docker rmi IMAGE} against the stage's engine, within 30 s. */
  RemoveResult removeImage(String image) throws InterruptedException {
    List<String> argv = List.of(settings.dockerCli().toString(), "rmi", image);
    ProcessBuilder builder = new ProcessBuilder(argv).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(DEV_NULL));
    builder.environment().clear();
    builder.environment().put("PATH", BuildCommand.DEFAULT_PATH);
    environment.env("DOCKER_HOST").ifPresent(h -> builder.environment().put("DOCKER_HOST", h));
    settings.dockerHost().ifPresent(h -> builder.environment().put("DOCKER_HOST", h));
    try {
      Process process = builder.start();
      String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (!process.waitFor(RMI_SECONDS, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        return new RemoveResult(Removal.FAILED, "no answer within " + RMI_SECONDS + " s");
      }
      if (process.exitValue() == 0) {
        return new RemoveResult(Removal.REMOVED, "");
      }
      if (output.contains("No such image")) {
        return new RemoveResult(Removal.ABSENT, output);
      }
      if (BuildkitStage.ENGINE_LOST.matcher(output).find()) {
        return new RemoveResult(Removal.UNREACHABLE, output);
      }
      return new RemoveResult(Removal.FAILED, output);
    } catch (IOException e) {
      return new RemoveResult(Removal.FAILED, e.getMessage());
    }
  }

  /**
   * Removes what a dead worker's job recorded: first the build's processes, then its private
   * image, then its directories.
   *
   * @throws IllegalStateException when the engine cannot be reached, so that the runtime keeps
   *     the records for the next start
   */
  void remove(List<String> recorded, JobLog log) {
    List<String> builds = new ArrayList<>();
    List<String> images = new ArrayList<>();
    List<String> dirs = new ArrayList<>();
    for (String record : recorded) {
      if (record.startsWith(BUILD)) {
        builds.add(record.substring(BUILD.length()));
      } else if (record.startsWith(IMAGE)) {
        images.add(record.substring(IMAGE.length()));
      } else if (record.startsWith(DIR)) {
        dirs.add(record.substring(DIR.length()));
      } else {
        log.line("ignored a record this version does not know: " + record);
      }
    }
    builds.forEach(name -> killBuild(name, log));
    String unreachable = null;
    for (String image : images) {
      if (!image.startsWith(PrivateImageName.NAMESPACE) || !ImageReference.isValid(image)) {
        log.line("left image " + image + " alone: not a job-private name");
        continue;
      }
      RemoveResult result;
      try {
        result = removeImage(image);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while removing " + image);
      }
      switch (result.removal()) {
        case REMOVED -> log.line("removed the build's private image " + image);
        case ABSENT -> log.line("the build's private image " + image + " was never made (or is gone)");
        case UNREACHABLE -> unreachable = result.detail();
        case FAILED -> log.line("could not remove the build's private image " + image + ": " + result.detail());
      }
    }
    dirs.forEach(dir -> removeDir(dir, log));
    if (unreachable != null) {
      throw new IllegalStateException("the engine cannot be reached to remove " + images + ": " + unreachable);
    }
  }

  /** Stops every process whose arguments carry the build's unique name. */
  private static void killBuild(String uniqueName, JobLog log) {
    if (!UNIQUE_NAME.matcher(uniqueName).matches()) {
      log.line("ignored build record '" + uniqueName + "': not a build's unique name");
      return;
    }
    long self = ProcessHandle.current().pid();
    List<ProcessHandle> matching = ProcessHandle.allProcesses()
        .filter(p -> p.pid() != self)
        .filter(p -> p.info().arguments()
            .map(args -> Arrays.stream(args).anyMatch(a -> a.contains(uniqueName))).orElse(false))
        .toList();
    for (ProcessHandle p : matching) {
      if (!ProcessTree.isRunning(p)) {
        continue;
      }
      String what = p.pid() + " (" + p.info().command().orElse("?") + ")";
      List<ProcessHandle> left = new ProcessTree(p).kill(KILL_GRACE, KILL_LIMIT);
      log.line("killed build process " + what + " of build " + uniqueName
          + (left.isEmpty() ? "" : "; still running: " + left.stream().map(ProcessHandle::pid).toList()));
    }
  }

  private static void removeDir(String recorded, JobLog log) {
    Path dir;
    try {
      dir = Path.of(recorded);
    } catch (RuntimeException e) {
      log.line("ignored directory record '" + recorded + "': not a path");
      return;
    }
    if (!dir.isAbsolute() || !dir.normalize().equals(dir) || dir.getFileName() == null
        || !OWN_DIR.matcher(dir.getFileName().toString()).matches()) {
      log.line("left " + recorded + " alone: not a directory this stage makes");
      return;
    }
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return; // never made, or removed when the build ended
    }
    if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      log.line("left " + dir + " alone: not a directory");
      return;
    }
    if (!deleteTree(dir)) {
      log.line("could not remove " + dir + " entirely");
      return;
    }
    log.line(Files.exists(dir, LinkOption.NOFOLLOW_LINKS) ? "could not remove " + dir
        : "removed the build's temporary directory " + dir);
  }

  /**
   * Removes {@code dir} with everything in it, links not followed; best effort, never throws.
   *
   * @return false when walking it failed part-way
   */
  static boolean deleteTree(Path dir) {
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return true;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      return true;
    } catch (IOException | UncheckedIOException e) {
      return false;
    }
  }
}

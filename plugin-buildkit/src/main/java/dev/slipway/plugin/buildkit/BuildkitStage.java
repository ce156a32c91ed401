package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKey;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.api.WorkerEnvironment;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The {@code buildkit} stage: builds the job's image by running build.sh under a job-private name
 * ({@link PrivateImageName}), never the caller's {@code image_name}, streams its output into the
 * job's log, and publishes that name as {@link StageKeys#LOCAL_IMAGE}. The job's build secrets
 * reach BuildKit as files ({@link BuildSecrets}), never as arguments or environment; so do the
 * registry credentials an earlier stage published, for private base images ({@link
 * PrivateDockerConfig}). {@link #cleanup} removes the private name and those files however the job
 * ended; each of them, and build.sh, is recorded before it is made, so that a worker started after
 * a crash removes what a killed worker left ({@link BuildLeftovers}).
 *
 * <p>The stage has no timer of its own: at {@code timeout} the runtime cancels and interrupts it,
 * which stops build.sh's whole process tree, and reports {@code worker.stage-timeout}. Error
 * codes: {@link BuildkitErrors}.
 */
final class BuildkitStage implements Stage {

  /** How many of the last output lines a failure message quotes. */
  static final int TAIL_LINES = 20;

  /** After SIGTERM, how long the build's processes get before SIGKILL. */
  static final Duration KILL_GRACE = Duration.ofMillis(800);

  /** How long stopping the build's processes may take in all. */
  static final Duration KILL_LIMIT = Duration.ofMillis(1800);

  /** build.sh's exit codes, see its header. */
  private static final int EXIT_USAGE = 2;

  private static final int EXIT_UNREACHABLE = 3;

  private static final Pattern BUILD_ARG_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
  private static final int MAX_BUILD_ARG_LENGTH = 64 * 1024;

  /** Output that says the engine went away during the build (not a RUN step's own output). */
  static final Pattern ENGINE_LOST =
      Pattern.compile(
          "Cannot connect to the Docker daemon|error during connect|code = Unavailable|failed to dial");

  private static final File DEV_NULL = new File("/dev/null");
  private static final SecureRandom RANDOM = new SecureRandom();

  /** The private name this job builds under, published before the build so cleanup finds it. */
  static final StageKey<String> BUILT_NAME = StageKey.of("buildkit-private-image", String.class);

  /** The directory of this job's secret files while they exist, so cleanup can make sure they go. */
  static final StageKey<Path> SECRETS_DIR = StageKey.of("buildkit-secrets-dir", Path.class);

  /** The build's private Docker config while it exists, so cleanup can make sure it goes. */
  static final StageKey<Path> DOCKER_CONFIG_DIR = StageKey.of("buildkit-docker-config-dir", Path.class);

  private final BuildkitSettings settings;
  private final WorkerEnvironment environment;
  private final Clock clock;
  private final BuildLeftovers leftovers;

  BuildkitStage(BuildkitSettings settings, WorkerEnvironment environment, Clock clock) {
    this.settings = settings;
    this.environment = environment;
    this.clock = clock;
    this.leftovers = new BuildLeftovers(settings, environment);
  }

  @Override
  public void validate(JobRequestView request, StageOptions options) throws StageException {
    validate(request);
    BuildChoices.of(settings, options);
  }

  @Override
  public void validate(JobRequestView request) throws StageException {
    var imageProblem = ImageReference.problem(request.imageName());
    if (imageProblem.isPresent()) {
      throw new StageException(BuildkitErrors.INVALID_REQUEST, "image_name " + imageProblem.get());
    }
    SourcePaths.checkRelative("dockerfile_path", request.dockerfilePath());
    SourcePaths.checkRelative("context_dir", request.contextDir());
    for (var arg : request.buildArgs().entrySet()) {
      String name = arg.getKey();
      if (!BUILD_ARG_NAME.matcher(name).matches()) {
        throw new StageException(
            BuildkitErrors.INVALID_REQUEST,
            "build_args: '"
                + ImageReference.printable(name)
                + "' is not a valid build argument name (letters, digits and '_', not starting with"
                + " a digit)");
      }
      if (arg.getValue().indexOf('\0') >= 0 || arg.getValue().length() > MAX_BUILD_ARG_LENGTH) {
        throw new StageException(
            BuildkitErrors.INVALID_REQUEST,
            "build_args: the value of '"
                + name
                + "' has a NUL character or is longer than "
                + MAX_BUILD_ARG_LENGTH
                + " characters");
      }
    }
    var secretsProblem = BuildSecrets.problem(request.buildSecrets());
    if (secretsProblem.isPresent()) {
      throw new StageException(BuildkitErrors.INVALID_REQUEST, secretsProblem.get());
    }
  }

  @Override
  public void execute(JobContext context) throws StageException, InterruptedException {
    JobRequestView request = context.request();
    validate(request);
    BuildChoices choices = BuildChoices.of(settings, context.options());
    // Only an auth stage that ran before this one has published credentials (pipeline
    // [git, ecr, buildkit, docker-push]); they let FROM pull private base images of that registry.
    Optional<RegistryCredentials> credentials = context.get(StageKeys.REGISTRY_CREDENTIALS);
    if (credentials.isPresent()) {
      var problem = PrivateDockerConfig.problem(credentials.get());
      if (problem.isPresent()) {
        throw new StageException(BuildkitErrors.INVALID_CREDENTIALS, problem.get());
      }
    }
    // Before anything runs: a RUN step that prints a secret, or an error that quotes one, is masked.
    request.buildSecrets().values().forEach(secret -> context.addSecret(secret.reveal()));
    credentials.ifPresent(c -> {
      context.addSecret(c.password().reveal());
      context.addSecret(PrivateDockerConfig.auth(c));
    });
    Path sourceDir = context.require(StageKeys.SOURCE_DIR);
    String commit = context.require(StageKeys.COMMIT_SHA);
    SourcePaths.Resolved paths =
        SourcePaths.resolve(sourceDir, request.dockerfilePath(), request.contextDir());

    Map<String, String> labels = new LinkedHashMap<>(settings.labels());
    labels.put(BuildkitSettings.LABEL_SOURCE, RepoUrls.withoutCredentials(request.repoUrl()));
    labels.put(BuildkitSettings.LABEL_REVISION, commit);
    // The commit's time when the clone stage gave it (as SOURCE_DATE_EPOCH does for reproducible
    // builds): the same commit then makes the same image, which a repeat job need not push again.
    Instant created = context.get(StageKeys.COMMIT_TIME).orElseGet(() -> Instant.now(clock));
    labels.put(
        BuildkitSettings.LABEL_CREATED,
        DateTimeFormatter.ISO_INSTANT.format(created.truncatedTo(ChronoUnit.SECONDS)));

    String image = PrivateImageName.forJob(context.jobId());
    // Each thing the build leaves outside the workspace is noted before it is made, so that a
    // worker started after a crash removes it (BuildLeftovers).
    context.recordLeftover(BuildLeftovers.IMAGE + image);
    context.publish(BUILT_NAME, image);
    Path tmpDir = BuildLeftovers.createDir(context, BuildLeftovers.BUILD_DIR_PREFIX);
    BuildSecrets secrets = BuildSecrets.NONE;
    Optional<PrivateDockerConfig> dockerConfig = Optional.empty();
    try {
      secrets = BuildSecrets.write(request.buildSecrets(),
          () -> BuildLeftovers.createDir(context, BuildLeftovers.SECRETS_DIR_PREFIX));
      secrets.dir().ifPresent(dir -> context.publish(SECRETS_DIR, dir));
      if (credentials.isPresent()) {
        // createDir records the directory before it makes it, and so before the file is written.
        dockerConfig = Optional.of(PrivateDockerConfig.write(credentials.get(),
            () -> {
              Path dir = BuildLeftovers.createDir(context, BuildLeftovers.DOCKER_CONFIG_DIR_PREFIX);
              context.publish(DOCKER_CONFIG_DIR, dir);
              return dir;
            }));
      }
      String uniqueName = uniqueName(context.jobId());
      context.recordLeftover(BuildLeftovers.BUILD + uniqueName);
      BuildCommand command =
          BuildCommand.of(
              settings,
              environment,
              image,
              paths,
              choices,
              labels,
              request.buildArgs(),
              secrets.files(),
              uniqueName,
              tmpDir,
              dockerConfig.map(PrivateDockerConfig::dir));
      context
          .log()
          .line(
              "building "
                  + request.imageName()
                  + " as "
                  + image
                  + " with "
                  + settings.backend().configName()
                  + " (Dockerfile "
                  + relative(sourceDir, paths.dockerfile())
                  + ", context "
                  + relative(sourceDir, paths.contextDir())
                  + ", network "
                  + settings.network().configName()
                  + choices.target().map(t -> ", target " + t).orElse("")
                  + choices.platform().map(p -> ", platform " + p).orElse("")
                  + (choices.noCache() ? ", no cache" : "")
                  + (secrets.files().isEmpty() ? "" : ", build secrets " + secrets.files().keySet())
                  + credentials.map(c -> ", registry credentials for " + c.registry()).orElse("")
                  + ")");
      run(context, command, request, image);
    } finally {
      // The values are needed only while the build runs: gone before anything else happens.
      secrets.close();
      dockerConfig.ifPresent(PrivateDockerConfig::close);
      BuildLeftovers.deleteTree(tmpDir);
    }
    context.publish(StageKeys.LOCAL_IMAGE, image);
  }

  /**
   * Removes what the job left outside its workspace, however it ended: the secret files and the
   * private Docker config (already gone unless the build was cut off mid-way) and the private
   * name the build was tagged with ({@code docker rmi}; the image's data goes with its last name). The push stage has pushed
   * from it by now, if the pipeline has one; an image built by a pipeline without a push is not
   * kept either, since nobody else may know its name. Never throws: a failure is logged to the job
   * and the worker carries on.
   */
  @Override
  public void cleanup(JobContext context) {
    context.get(SECRETS_DIR).ifPresent(BuildSecrets::delete);
    context.get(DOCKER_CONFIG_DIR).ifPresent(BuildLeftovers::deleteTree);
    context.get(BUILT_NAME).ifPresent(image -> {
      try {
        BuildLeftovers.RemoveResult result = leftovers.removeImage(image);
        switch (result.removal()) {
          case REMOVED -> context.log().line("removed the built image " + image);
          // Never built (the build failed or was stopped), or the push stage removed it already.
          case ABSENT -> { }
          default -> context.log().line("could not remove the built image " + image + ": " + result.detail());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
  }

  /**
   * Removes what a job of a worker that died left: the build's processes, its private image and
   * its temporary directories, as {@link BuildLeftovers} recorded them.
   */
  @Override
  public void removeLeftovers(List<String> recorded, JobLog log) {
    leftovers.remove(recorded, log);
  }

  private void run(JobContext context, BuildCommand command, JobRequestView request, String image)
      throws StageException, InterruptedException {
    if (context.isCancelled() || Thread.currentThread().isInterrupted()) {
      throw new InterruptedException("the job was cancelled before the build started");
    }
    ProcessBuilder builder =
        new ProcessBuilder(command.argv())
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(DEV_NULL))
            .directory(new File(command.environment().get("TMPDIR")));
    builder.environment().clear();
    builder.environment().putAll(command.environment());

    long started = System.nanoTime();
    Process process;
    try {
      process = builder.start();
    } catch (IOException e) {
      // SCRIPT_ERROR is declared INTERNAL (build.sh refusing its arguments); a script that cannot
      // be started at all has always been reported as the configuration's fault.
      throw new StageException(
          BuildkitErrors.SCRIPT_ERROR.code(),
          ErrorKind.CONFIGURATION,
          "cannot start " + settings.script() + ": " + e.getMessage(),
          e);
    }
    context.processStarted(process.toHandle());
    ProcessTree tree = new ProcessTree(process.toHandle());
    OutputTail tail = new OutputTail(TAIL_LINES);
    Thread pump = pump(process.getInputStream(), context, tail);
    context.onCancel(() -> stop(tree, context));

    // No timer here: at the stage's timeout the runtime runs the cancel action (which stops the
    // tree, so this wait ends) and interrupts this thread.
    try {
      process.waitFor();
    } catch (InterruptedException e) {
      stop(tree, context);
      join(pump);
      throw e;
    }
    // Stops anything build.sh left behind, and waits for a cancellation that is stopping the tree.
    stop(tree, context);
    join(pump);
    if (context.isCancelled()) {
      throw new InterruptedException("the job was cancelled during the build");
    }
    int exit = process.exitValue();
    if (exit == 0) {
      context
          .log()
          .line(
              "built "
                  + request.imageName()
                  + " as "
                  + image
                  + " in "
                  + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)
                  + " ms");
      return;
    }
    throw failure(exit, tail, request, context);
  }

  private StageException failure(int exit, OutputTail tail, JobRequestView request, JobContext context) {
    List<String> lines = tail.lines();
    String text = tailText(tail, request, context.get(StageKeys.REGISTRY_CREDENTIALS));
    if (exit == EXIT_UNREACHABLE) {
      return new StageException(
          BuildkitErrors.ENGINE_UNREACHABLE,
          "the " + engineName() + " cannot be reached:\n" + text, null, true);
    }
    if (exit == EXIT_USAGE) {
      return new StageException(
          BuildkitErrors.SCRIPT_ERROR,
          settings.script() + " refused its arguments (exit 2):\n" + text);
    }
    boolean engineLost =
        lines.stream().anyMatch(l -> !l.startsWith("#") && ENGINE_LOST.matcher(l).find());
    // The CLI does not always say the engine went away (20.10 may only say that the server
    // "did not provide an image ID"): ask the engine itself before blaming the Dockerfile.
    if (!engineLost && settings.backend() == BuildkitSettings.Backend.DOCKER && !engineAnswers()) {
      engineLost = true;
    }
    if (engineLost) {
      return new StageException(
          BuildkitErrors.ENGINE_UNREACHABLE,
          "the " + engineName() + " went away during the build:\n" + text, null, true);
    }
    return new StageException(
        BuildkitErrors.FAILED,
        "the image build failed (build.sh exit " + exit + "); last lines of its output:\n" + text);
  }

  /** Whether the Docker engine answers {@code docker version} within a few seconds. */
  private boolean engineAnswers() {
    try {
      ProcessBuilder builder = new ProcessBuilder(settings.dockerCli().toString(), "version",
          "--format", "{{.Server.Version}}")
          .redirectErrorStream(true)
          .redirectInput(ProcessBuilder.Redirect.from(DEV_NULL))
          .redirectOutput(ProcessBuilder.Redirect.DISCARD);
      // The worker's PATH and DOCKER_HOST only; no config of the worker's (contexts, logins).
      builder.environment().keySet().removeIf(k -> !k.equals("PATH") && !k.equals("DOCKER_HOST"));
      builder.environment().put("DOCKER_CONFIG", "/nonexistent/slipway-engine-probe");
      settings.dockerHost().ifPresent(h -> builder.environment().put("DOCKER_HOST", h));
      Process probe = builder.start();
      if (!probe.waitFor(5, TimeUnit.SECONDS)) {
        probe.destroyForcibly();
        return false;
      }
      return probe.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return true;
    }
  }

  private String engineName() {
    return settings.backend() == BuildkitSettings.Backend.DOCKER
        ? "Docker engine"
        : "buildkitd (or the Docker engine that loads the image)";
  }

  /**
   * The tail for an error message, with the job's token, build secrets and registry credentials
   * masked: the runtime masks messages too, but a message may be read where no runtime is.
   */
  private static String tailText(OutputTail tail, JobRequestView request,
      Optional<RegistryCredentials> credentials) {
    String text = String.join("\n", tail.lines());
    List<String> secrets = new java.util.ArrayList<>();
    request.token().map(Secret::reveal).ifPresent(secrets::add);
    request.buildSecrets().values().forEach(s -> secrets.add(s.reveal()));
    credentials.ifPresent(c -> {
      secrets.add(c.password().reveal());
      secrets.add(PrivateDockerConfig.auth(c));
    });
    // Longest first, so that a secret that contains another is masked whole.
    secrets.sort(Comparator.comparingInt(String::length).reversed());
    for (String secret : secrets) {
      if (!secret.isBlank()) {
        text = text.replace(secret, "****");
      }
    }
    return text;
  }

  private static void stop(ProcessTree tree, JobContext context) {
    List<ProcessHandle> left = tree.kill(KILL_GRACE, KILL_LIMIT);
    if (!left.isEmpty()) {
      context.log().line("could not stop build processes " + left.stream().map(ProcessHandle::pid).toList());
    }
  }

  private static Thread pump(InputStream output, JobContext context, OutputTail tail) {
    Thread thread =
        new Thread(
            () -> {
              byte[] buffer = new byte[8192];
              try (InputStream in = output;
                  OutputStream log = context.log().lineStream()) {
                int n;
                while ((n = in.read(buffer)) >= 0) {
                  log.write(buffer, 0, n);
                  log.flush();
                  tail.write(buffer, 0, n);
                }
              } catch (IOException e) {
                // The stream closes when the build is stopped; what was read is logged.
              }
            },
            "buildkit-output-" + context.jobId());
    thread.setDaemon(true);
    thread.start();
    return thread;
  }

  /** Waits a little for the output pump, keeping any interrupt for the caller. */
  private static void join(Thread pump) {
    boolean interrupted = Thread.interrupted();
    try {
      pump.join(KILL_LIMIT.toMillis());
    } catch (InterruptedException e) {
      interrupted = true;
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static String uniqueName(String jobId) {
    String safe = jobId.replaceAll("[^A-Za-z0-9._-]", "-");
    if (safe.length() > 40) {
      safe = safe.substring(0, 40);
    }
    byte[] random = new byte[4];
    RANDOM.nextBytes(random);
    return "slipway-" + safe + "-" + HexFormat.of().formatHex(random);
  }

  private static String relative(Path root, Path path) {
    try {
      String rel = root.toRealPath().relativize(path).toString();
      return rel.isEmpty() ? "." : rel;
    } catch (IOException | IllegalArgumentException e) {
      return path.toString();
    }
  }
}

package dev.slipway.worker.runtime.cli;

import dev.slipway.proto.v1.CancelJobRequest;
import dev.slipway.proto.v1.CancelJobResponse;
import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.GetJobRequest;
import dev.slipway.proto.v1.GetJobResponse;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobState;
import dev.slipway.proto.v1.WatchJobRequest;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.PingResponse;
import dev.slipway.proto.v1.StageResult;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import dev.slipway.worker.runtime.logging.TerminalText;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** A small gRPC client of a worker: submit, ping, cancel. */
final class ClientCommands {
  /** The job ran and failed, was cancelled or timed out. */
  static final int EXIT_JOB_FAILED = 1;
  /** The worker could not be reached or refused the call. */
  static final int EXIT_UNREACHABLE = 3;

  private ClientCommands() {}

  /** Options every client command shares. */
  static final class Target {
    @Option(names = {"-t", "--target"}, paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:50052",
        description = "The worker to call (default: ${DEFAULT-VALUE})")
    String target;

    @Option(names = "--tls", description = "Use TLS (implied by --ca-file, --cert-file,"
        + " --key-file and --server-name); without --ca-file the JDK's trusted authorities")
    boolean tls;

    @Option(names = "--ca-file", paramLabel = "PEM",
        description = "Trust the certificate authorities in this PEM file instead of the JDK's")
    Path caFile;

    @Option(names = "--cert-file", paramLabel = "PEM",
        description = "Client certificate chain for mutual TLS (with --key-file)")
    Path certFile;

    @Option(names = "--key-file", paramLabel = "PEM",
        description = "Private key of --cert-file, unencrypted PKCS#8 (BEGIN PRIVATE KEY)")
    Path keyFile;

    @Option(names = "--server-name", paramLabel = "NAME",
        description = "The name the worker's certificate must carry, when it is not the target's"
            + " host (an IP address, say)")
    String serverName;

    @Option(names = "--token-file", paramLabel = "FILE",
        description = "Send the bearer token in this file on every call (needs TLS)")
    Path tokenFile;

    /** Whether secrets may go to the target: over TLS, or in plaintext only to this host. */
    boolean mayCarrySecrets() {
      String host = target.startsWith("[") ? target.substring(1, Math.max(1, target.indexOf(']')))
          : target.contains(":") ? target.substring(0, target.lastIndexOf(':')) : target;
      return tls || caFile != null || certFile != null || keyFile != null || serverName != null
          || host.equals("localhost") || host.startsWith("127.") || host.equals("::1");
    }

    ClientConnection connect() throws ClientConnection.UsageException {
      return ClientConnection.open(new ClientConnection.Settings(
          target, tls, caFile, certFile, keyFile, tokenFile, serverName));
    }
  }

  /** Submits a job and follows it live. */
  @Command(name = "submit", description = "Run a job on a worker and show it live (StreamJob).")
  static final class Submit implements Callable<Integer> {
    @CommandLine.Mixin Target target = new Target();
    @Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--repo", required = true, description = "Git repository URL")
    String repo;

    @Option(names = "--branch", defaultValue = "", description = "Branch (default: the remote's)")
    String branch;

    @Option(names = "--ref", defaultValue = "",
        description = "Any full ref instead of a branch: refs/tags/v1, refs/pull/42/merge")
    String ref;

    @Option(names = "--commit", defaultValue = "",
        description = "Build exactly this commit (40 hex digits) of the branch or ref")
    String commit;

    @Option(names = "--image", required = true, description = "Image to build, repository[:tag]")
    String image;

    @Option(names = "--tag", paramLabel = "TAG",
        description = "Push the image under this tag too (extra_tags); repeatable")
    List<String> extraTags = new ArrayList<>();

    @Option(names = "--option", paramLabel = "STAGE.OPTION=VALUE",
        description = "A per-job stage option (stage_options), e.g. buildkit.no-cache=true;"
            + " repeatable; `worker plugins` lists them")
    Map<String, String> stageOptions = new LinkedHashMap<>();

    @Option(names = "--dockerfile", defaultValue = "", description = "Dockerfile path")
    String dockerfile;

    @Option(names = "--context", defaultValue = "", description = "Build context directory")
    String context;

    @Option(names = "--build-arg", paramLabel = "K=V", description = "Build argument; repeatable")
    Map<String, String> buildArgs = new LinkedHashMap<>();

    @Option(names = "--token-env", paramLabel = "VAR",
        description = "Read the git token from this environment variable (never from argv)")
    String tokenEnv;

    @Option(names = "--secret-env", paramLabel = "ID=VAR",
        description = "A BuildKit secret (RUN --mount=type=secret,id=ID) read from environment"
            + " variable VAR, never from argv; repeatable")
    Map<String, String> secretEnv = new LinkedHashMap<>();

    @Option(names = "--job-id", defaultValue = "", description = "Job id (default: generated)")
    String jobId;

    @Option(names = "--plain", description = "Plain lines, even on a terminal")
    boolean plain;

    @Option(names = "--detach", description = "Start the job detached (SubmitJob), print its id"
        + " and return; follow it with `watch ID`, ask with `status ID`")
    boolean detach;

    @Override
    public Integer call() throws InterruptedException {
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      JobRequest.Builder request = JobRequest.newBuilder()
          .setJobId(jobId).setRepoUrl(repo).setBranch(branch).setImageName(image)
          .setDockerfilePath(dockerfile).setContextDir(context).putAllBuildArgs(buildArgs)
          .setRef(ref).setCommitSha(commit).addAllExtraTags(extraTags)
          .putAllStageOptions(stageOptions);
      if ((tokenEnv != null || !secretEnv.isEmpty()) && !target.mayCarrySecrets()) {
        err.println("submit: --token-env and --secret-env send secrets to the worker; use TLS"
            + " (--tls or --ca-file) for a worker on another host");
        return CommandLine.ExitCode.USAGE;
      }
      if (tokenEnv != null) {
        String token = System.getenv(tokenEnv);
        if (token == null || token.isBlank()) {
          err.println("submit: environment variable " + tokenEnv + " is not set or empty");
          return CommandLine.ExitCode.USAGE;
        }
        request.setGithubToken(token);
      }
      for (Map.Entry<String, String> secret : secretEnv.entrySet()) {
        String value = System.getenv(secret.getValue());
        if (value == null) {
          err.println("submit: environment variable " + secret.getValue() + " (for build secret "
              + secret.getKey() + ") is not set");
          return CommandLine.ExitCode.USAGE;
        }
        request.putBuildSecrets(secret.getKey(), value);
      }
      boolean live = !plain && System.console() != null;
      ClientConnection connection;
      try {
        connection = target.connect();
      } catch (ClientConnection.UsageException e) {
        err.println("submit: " + e.getMessage());
        return CommandLine.ExitCode.USAGE;
      }
      try (connection) {
        if (detach) {
          // Detached: the job goes on whatever happens to this connection.
          out.println(connection.jobService().withDeadlineAfter(30, TimeUnit.SECONDS)
              .submitJob(request.build()).getJobId());
          out.flush();
          return 0;
        }
        return follow(connection.jobService().streamJob(request.build()), out, err, live,
            "submit");
      } catch (StatusRuntimeException e) {
        err.println("submit: " + e.getStatus().getCode() + ": " + ClientConnection.describe(e));
        return EXIT_UNREACHABLE;
      }
    }

    static int printResult(PrintWriter out, JobResponse result) {
      out.println();
      if (result.getSuccess()) {
        out.println("job " + result.getJobId() + " succeeded in " + result.getDurationMs() + " ms");
        if (!result.getCommitSha().isEmpty()) {
          out.println("commit: " + result.getCommitSha());
        }
        if (!result.getImageUri().isEmpty()) {
          out.println("image:  " + result.getImageUri());
        }
        for (String uri : result.getExtraImageUrisList()) {
          out.println("image:  " + uri);
        }
        if (!result.getImageDigest().isEmpty()) {
          out.println("digest: " + result.getImageDigest());
        }
        out.flush();
        return 0;
      }
      out.println("job " + result.getJobId() + " " + result.getOutcome().name()
          .replace("JOB_OUTCOME_", "").toLowerCase(java.util.Locale.ROOT)
          + (result.getFailedStage().isEmpty() ? "" : " in stage " + result.getFailedStage())
          + (result.getErrorCode().isEmpty() ? "" : " (" + result.getErrorCode() + ")")
          + (result.getRetryable() ? "; retrying may help" : ""));
      out.println(TerminalText.escapeControls(result.getMessage(), false));
      out.flush();
      return EXIT_JOB_FAILED;
    }
  }

  /** Prints a job's progress: on a terminal the last log line updates in place. */
  static final class ProgressPrinter {
    private static final String CLEAR_LINE = "\r\033[2K";
    private static final int WIDTH = 110;
    private final PrintWriter out;
    private final boolean live;
    private boolean pending;

    ProgressPrinter(PrintWriter out, boolean live) {
      this.out = out;
      this.live = live;
    }

    void stageStarted(String jobId, String stage) {
      clear();
      out.println("> " + stage + "  (job " + jobId + ")");
      out.flush();
    }

    void log(String stage, String raw) {
      // Build output is the job's, not ours: an escape sequence in it must not act on our terminal.
      String line = TerminalText.escapeControls(raw, false);
      if (live) {
        String shown = line.length() > WIDTH ? line.substring(0, WIDTH - 3) + "..." : line;
        out.print(CLEAR_LINE + "  | " + shown);
        pending = true;
      } else {
        out.println("  [" + stage + "] " + line);
      }
      out.flush();
    }

    void stageFinished(StageResult result) {
      clear();
      out.println((result.getSuccess() ? "  ok   " : "  FAIL ") + result.getStage() + " ("
          + result.getDurationMs() + " ms)"
          + (result.getMessage().isEmpty() ? ""
              : ": " + TerminalText.escapeControls(result.getMessage(), false)));
      out.flush();
    }

    private void clear() {
      if (pending) {
        out.print(CLEAR_LINE);
        pending = false;
      }
    }
  }

  /** Asks a worker whether it is free. */
  @Command(name = "ping", description = "Ask a worker for its id and status.")
  static final class Ping implements Callable<Integer> {
    @CommandLine.Mixin Target target = new Target();
    @Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
      ClientConnection connection;
      try {
        connection = target.connect();
      } catch (ClientConnection.UsageException e) {
        spec.commandLine().getErr().println("ping: " + e.getMessage());
        return CommandLine.ExitCode.USAGE;
      }
      try (connection) {
        PingResponse ping = connection.jobService()
            .withDeadlineAfter(5, TimeUnit.SECONDS).ping(PingRequest.getDefaultInstance());
        spec.commandLine().getOut().println(ping.getWorkerId() + " "
            + ping.getStatus().name().replace("WORKER_STATUS_", "")
            + (ping.getCurrentJobId().isEmpty() ? "" : " " + ping.getCurrentJobId()));
        spec.commandLine().getOut().flush();
        return 0;
      } catch (StatusRuntimeException e) {
        spec.commandLine().getErr().println("ping: " + target.target + ": "
            + e.getStatus().getCode() + " " + ClientConnection.describe(e));
        return EXIT_UNREACHABLE;
      }
    }
  }

  /** What a command does on an open connection; returns its exit code. */
  interface ConnectionCall {
    int run(ClientConnection connection) throws InterruptedException;
  }

  /**
   * Opens a connection to the target and runs {@code call} on it: a usage problem (flags, files)
   * exits 2, a call the worker refused or could not take exits 3, each said on one line.
   */
  static int onConnection(Target target, CommandLine.Model.CommandSpec spec, String name,
      ConnectionCall call) throws InterruptedException {
    ClientConnection connection;
    try {
      connection = target.connect();
    } catch (ClientConnection.UsageException e) {
      spec.commandLine().getErr().println(name + ": " + e.getMessage());
      return CommandLine.ExitCode.USAGE;
    }
    try (connection) {
      return call.run(connection);
    } catch (StatusRuntimeException e) {
      spec.commandLine().getErr().println(name + ": " + e.getStatus().getCode() + ": "
          + ClientConnection.describe(e));
      return EXIT_UNREACHABLE;
    }
  }

  /** Prints a job's events as they come; returns the exit code of its result. */
  static int follow(Iterator<JobEvent> events, PrintWriter out, PrintWriter err, boolean live,
      String command) {
    JobResponse result = null;
    ProgressPrinter printer = new ProgressPrinter(out, live);
    while (events.hasNext()) {
      JobEvent event = events.next();
      switch (event.getEventCase()) {
        case STAGE_STARTED -> printer.stageStarted(event.getJobId(),
            event.getStageStarted().getStage());
        case LOG -> printer.log(event.getLog().getStage(), event.getLog().getLine());
        case STAGE_FINISHED -> printer.stageFinished(event.getStageFinished().getResult());
        case RESULT -> result = event.getResult();
        default -> { }
      }
    }
    if (result == null) {
      err.println(command + ": the worker closed the stream without a result");
      return EXIT_UNREACHABLE;
    }
    return Submit.printResult(out, result);
  }

  /** Follows a job, from the start or after a seq, to its result (WatchJob). */
  @Command(name = "watch", description = "Follow a job live to its result (WatchJob); re-attach"
      + " with --after-seq to miss nothing still kept.")
  static final class Watch implements Callable<Integer> {
    @CommandLine.Mixin Target target = new Target();
    @Spec CommandLine.Model.CommandSpec spec;

    @Parameters(paramLabel = "JOB_ID", description = "The job to follow")
    String jobId;

    @Option(names = "--after-seq", defaultValue = "0",
        description = "Only events after this seq (default: all that are kept)")
    long afterSeq;

    @Option(names = "--plain", description = "Plain lines, even on a terminal")
    boolean plain;

    @Override
    public Integer call() throws InterruptedException {
      return onConnection(target, spec, "watch", connection -> follow(
          connection.jobService().watchJob(WatchJobRequest.newBuilder()
              .setJobId(jobId).setAfterSeq(afterSeq).build()),
          spec.commandLine().getOut(), spec.commandLine().getErr(),
          !plain && System.console() != null, "watch"));
    }
  }

  /** Says where a job stands (GetJob). */
  @Command(name = "status", description = "Where a job stands: running (and in which stage) or"
      + " finished (and how) (GetJob).")
  static final class Status implements Callable<Integer> {
    @CommandLine.Mixin Target target = new Target();
    @Spec CommandLine.Model.CommandSpec spec;

    @Parameters(paramLabel = "JOB_ID", description = "The job")
    String jobId;

    @Override
    public Integer call() throws InterruptedException {
      PrintWriter out = spec.commandLine().getOut();
      return onConnection(target, spec, "status", connection -> {
        GetJobResponse job = connection.jobService().withDeadlineAfter(30, TimeUnit.SECONDS)
            .getJob(GetJobRequest.newBuilder().setJobId(jobId).build());
        if (job.getState() == JobState.JOB_STATE_FINISHED) {
          out.println("job " + job.getJobId() + " finished (last seq " + job.getLastSeq() + ")");
          return Submit.printResult(out, job.getResult());
        }
        out.println("job " + job.getJobId() + " running, stage "
            + (job.getCurrentStage().isEmpty() ? "(none yet)" : job.getCurrentStage())
            + ", last seq " + job.getLastSeq());
        out.flush();
        return 0;
      });
    }
  }

  /** Cancels a running job. */
  @Command(name = "cancel", description = "Cancel a running job.")
  static final class Cancel implements Callable<Integer> {
    @CommandLine.Mixin Target target = new Target();
    @Spec CommandLine.Model.CommandSpec spec;

    @Parameters(paramLabel = "JOB_ID", description = "The job to cancel")
    String jobId;

    @Override
    public Integer call() throws InterruptedException {
      return onConnection(target, spec, "cancel", connection -> {
        CancelJobResponse response = connection.jobService()
            .withDeadlineAfter(30, TimeUnit.SECONDS)
            .cancelJob(CancelJobRequest.newBuilder().setJobId(jobId).build());
        spec.commandLine().getOut().println(response.getMessage());
        spec.commandLine().getOut().flush();
        return response.getCancelled() ? 0 : EXIT_JOB_FAILED;
      });
    }
  }
}

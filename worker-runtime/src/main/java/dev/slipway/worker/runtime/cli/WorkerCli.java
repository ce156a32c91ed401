package dev.slipway.worker.runtime.cli;

import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.config.StartupPhases;
import dev.slipway.worker.runtime.logging.Logging;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * The {@code worker} command. Exit codes: 0 success, 1 a failure at run time, 2 bad configuration
 * or usage.
 */
@Command(name = "worker", mixinStandardHelpOptions = true,
    versionProvider = WorkerCli.Version.class,
    description = "Slipway build worker: clones, builds and pushes container images for an"
        + " orchestrator that calls it over gRPC.",
    subcommands = {WorkerCli.Serve.class, WorkerCli.CheckConfig.class, WorkerCli.Plugins.class,
        ClientCommands.Submit.class, ClientCommands.Watch.class, ClientCommands.Status.class,
        ClientCommands.Ping.class, ClientCommands.Cancel.class})
public final class WorkerCli implements Callable<Integer> {
  /** Bad configuration or usage. */
  public static final int EXIT_CONFIG = 2;

  @Option(names = {"-c", "--config"}, paramLabel = "FILE", scope = CommandLine.ScopeType.INHERIT,
      description = "HOCON file overriding the defaults (default: ./application.conf if present)")
  Path config;

  @Spec
  CommandLine.Model.CommandSpec spec;

  /** From the first line of {@link #run}: the phases of start-up, logged at debug once serving. */
  private final StartupPhases phases;

  WorkerCli(StartupPhases phases) {
    this.phases = phases;
  }

  /** Runs the command line and returns the exit code; {@code main} exits with it. */
  public static int run(String... args) {
    return run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args);
  }

  /** Runs the command line with the given output streams; for tests and embedding. */
  public static int run(PrintWriter out, PrintWriter err, String... args) {
    // Quiet until `serve` applies worker.log.*: library DEBUG output (Netty dumps frames, which
    // hold request fields) must never reach a terminal by default.
    StartupPhases phases = new StartupPhases();
    Logging.configure("text", "WARN");
    phases.mark("log-init");
    Optional<Optional<Path>> serve = plainServe(args);
    if (serve.isPresent()) {
      return serve(serve.get(), phases, err);
    }
    CommandLine cli = new CommandLine(new WorkerCli(phases));
    phases.mark("picocli");
    cli.setOut(out);
    cli.setErr(err);
    cli.setExitCodeExceptionMapper(e -> e instanceof StartupException ? EXIT_CONFIG : 1);
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      if (e instanceof StartupException) {
        commandLine.getErr().println("slipway: " + e.getMessage());
        return EXIT_CONFIG;
      }
      throw e;
    });
    return cli.execute(args);
  }

  /**
   * The configuration file of a command line that only says "serve" ({@code serve},
   * {@code --config F}, {@code serve -c F}, {@code --config=F serve}, or nothing: what
   * bin/worker and a container run); empty for any other command line, which picocli parses.
   * Why: picocli builds its model of every subcommand by reflection, from classes too old for the
   * JVM's class-data cache, which took about a fifth of the worker's start-up for a parse that
   * this does in a loop. Anything else (help, other options, argument files) goes to picocli as before.
   */
  static Optional<Optional<Path>> plainServe(String... args) {
    boolean serve = false;
    String config = null;
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (arg.equals("serve") && !serve) {
        serve = true;
      } else if ((arg.equals("--config") || arg.equals("-c")) && config == null
          && i + 1 < args.length && plainValue(args[i + 1])) {
        config = args[++i];
      } else if (arg.startsWith("--config=") && config == null
          && plainValue(arg.substring("--config=".length()))) {
        config = arg.substring("--config=".length());
      } else {
        return Optional.empty();
      }
    }
    return Optional.of(Optional.ofNullable(config).map(Path::of));
  }

  /** A value picocli would take as it is: not empty, not an option, not an argument file. */
  private static boolean plainValue(String value) {
    return !value.isEmpty() && !value.startsWith("-") && !value.startsWith("@");
  }

  /** `serve` without picocli, with the exit codes and messages {@link #run} gives it. */
  private static int serve(Optional<Path> config, StartupPhases phases, PrintWriter err) {
    WorkerCli parent = new WorkerCli(phases);
    parent.config = config.orElse(null);
    Serve serve = new Serve();
    serve.parent = parent;
    try {
      return serve.call();
    } catch (StartupException e) {
      err.println("slipway: " + e.getMessage());
      err.flush();
      return EXIT_CONFIG;
    } catch (Exception e) {
      // What picocli prints for an unhandled exception: the stack trace.
      e.printStackTrace(err);
      err.flush();
      return 1;
    }
  }

  @Override
  public Integer call() throws Exception {
    // No subcommand: serve, as operators expect of a daemon's bare command.
    Serve serve = new Serve();
    serve.parent = this;
    return serve.call();
  }

  Optional<Path> configFile() {
    return Optional.ofNullable(config);
  }

  /** Serves jobs until SIGTERM or SIGINT, then drains and exits 0. */
  @Command(name = "serve", description = "Serve jobs over gRPC (the default).")
  static final class Serve implements Callable<Integer> {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Serve.class);

    @ParentCommand WorkerCli parent;

    @Override
    public Integer call() throws Exception {
      parent.phases.mark("cli");
      WorkerOptions options = WorkerOptions.fromProcess(parent.configFile());
      parent.phases.mark("options");
      Worker worker = Worker.prepare(options, parent.phases);
      Logging.configure(worker.settings().logFormat(), worker.settings().logLevel());
      parent.phases.mark("logging");
      CountDownLatch stopped = new CountDownLatch(1);
      // Installed before start, so that SIGTERM during start-up drains too (stop waits for it).
      Signals.onTermination(() -> {
        try {
          worker.stop();
        } finally {
          stopped.countDown();
        }
      }, () -> {
        // A second signal during the drain: stop waiting for running jobs.
        LOG.warn("second termination signal: cancelling running jobs now");
        worker.jobs().cancelAll();
      });
      worker.start();
      if (LOG.isDebugEnabled()) {
        LOG.debug("start-up phases: {}", parent.phases.summary());
      }
      stopped.await();
      return 0;
    }
  }

  /** Validates the configuration and prints the effective pipeline, secrets masked. */
  @Command(name = "check-config",
      description = "Validate the configuration and print the effective pipeline.")
  static final class CheckConfig implements Callable<Integer> {
    @ParentCommand WorkerCli parent;
    @Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      try (Worker worker = Worker.prepare(WorkerOptions.fromProcess(parent.configFile()))) {
        PrintWriter out = spec.commandLine().getOut();
        out.println("configuration OK");
        out.println("pipeline: " + String.join(" -> ", worker.pipeline().ids()));
        out.println();
        out.println(worker.renderEffectiveConfig());
        out.flush();
      }
      return 0;
    }
  }

  /** Lists every discovered stage. */
  @Command(name = "plugins", description = "List the stages of every discovered plugin.")
  static final class Plugins implements Callable<Integer> {
    @ParentCommand WorkerCli parent;
    @Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      out.printf("%-16s %-34s %-16s %s%n", "STAGE", "MODULE", "VERSION", "FROM");
      WorkerOptions options = WorkerOptions.fromProcess(parent.configFile());
      List<DiscoveredStage> stages = PluginRegistry.discover(options.pluginsDir()).all();
      for (DiscoveredStage stage : stages) {
        out.printf("%-16s %-34s %-16s %s%n", stage.id(), stage.moduleName(), stage.version(),
            stage.source());
      }
      for (DiscoveredStage stage : stages) {
        describe(out, stage);
      }
      out.flush();
      return 0;
    }
  }

  /** What a stage does, the per-job options it takes and the error codes it fails with. */
  public static void describe(PrintWriter out, DiscoveredStage stage) {
    StageFactory factory = stage.factory();
    out.println();
    out.println(stage.id() + (factory.description().isBlank() ? ""
        : ": " + factory.description().strip()));
    List<StageOption> declared = factory.options();
    out.println("  options (JobRequest.stage_options):" + (declared.isEmpty() ? " none" : ""));
    for (StageOption option : declared) {
      out.printf("    %-32s %s; default: %s%s%n", stage.id() + "." + option.name(),
          option.expected(), option.defaultValue(), option.isSecret() ? "; secret" : "");
      if (!option.description().isBlank()) {
        out.println("        " + option.description().strip());
      }
    }
    List<? extends ErrorCode> codes = factory.errorCodes();
    out.println("  error codes:" + (codes.isEmpty() ? " not declared" : ""));
    for (ErrorCode code : codes) {
      out.printf("    %-32s %-16s %s%n", code.code(),
          code.kind().name().toLowerCase(java.util.Locale.ROOT), code.description().strip());
    }
  }

  /** The version from the runtime module. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"slipway worker " + Worker.version()};
    }
  }
}

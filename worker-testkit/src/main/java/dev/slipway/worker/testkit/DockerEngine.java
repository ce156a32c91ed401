package dev.slipway.worker.testkit;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The Docker engine that tests use, as {@code scripts/test-services.sh up} starts it: found through
 * {@code DOCKER_HOST} and {@code SLIPWAY_DOCKER_CLI}, else through the {@code env} file in
 * {@code $SLIPWAY_STATE_DIR} (default {@code /tmp/slipway-services}). It does not depend on JUnit;
 * a test checks availability like this:
 *
 * <pre>{@code
 * static final DockerEngine DOCKER = DockerEngine.fromEnvironment();
 *
 * @BeforeAll
 * static void engine() {
 *   Optional<String> missing = DOCKER.skipReason();
 *   Assumptions.assumeTrue(missing.isEmpty(), () -> missing.orElseThrow());
 * }
 * }</pre>
 *
 * <p>{@link #skipReason()} throws instead when {@code SLIPWAY_REQUIRE_DOCKER=1} (CI sets it), so
 * that an engine that failed to start fails the build rather than silently skipping its tests.
 *
 * <p>Commands run {@code /usr/bin/docker} (docker.io's 20.10 client) unless {@code
 * SLIPWAY_DOCKER_CLI} names another: a 28.x client refuses {@code DOCKER_BUILDKIT=1} without buildx.
 */
public final class DockerEngine {
  /** Where {@code scripts/test-services.sh} keeps its state unless SLIPWAY_STATE_DIR says otherwise. */
  public static final Path DEFAULT_STATE_DIR = Path.of("/tmp/slipway-services");

  /** The CLI used when nothing names one. */
  public static final Path DEFAULT_CLI = Path.of("/usr/bin/docker");

  private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(15);
  private static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(2);

  private final Optional<String> host;
  private final Path cli;
  private final String origin;
  private volatile Optional<String> problem;

  private DockerEngine(Optional<String> host, Path cli, String origin) {
    this.host = host;
    this.cli = cli;
    this.origin = origin;
  }

  /**
   * The engine the environment names: {@code DOCKER_HOST} (and {@code SLIPWAY_DOCKER_CLI}) when
   * set, else the values in {@code $SLIPWAY_STATE_DIR/env} written by {@code test-services.sh up}.
   */
  public static DockerEngine fromEnvironment() {
    Map<String, String> env = System.getenv();
    String host = env.getOrDefault("DOCKER_HOST", "");
    String cli = env.getOrDefault("SLIPWAY_DOCKER_CLI", "");
    if (!host.isBlank()) {
      return new DockerEngine(
          Optional.of(host), cli.isBlank() ? DEFAULT_CLI : Path.of(cli), "DOCKER_HOST");
    }
    Path file = stateDir().resolve("env");
    Map<String, String> values = ServicesEnvFile.read(file);
    String fileHost = values.getOrDefault("DOCKER_HOST", "");
    String fileCli = cli.isBlank() ? values.getOrDefault("SLIPWAY_DOCKER_CLI", "") : cli;
    return new DockerEngine(
        fileHost.isBlank() ? Optional.empty() : Optional.of(fileHost),
        fileCli.isBlank() ? DEFAULT_CLI : Path.of(fileCli),
        file.toString());
  }

  /** An engine at {@code host}, driven by {@code cli}. */
  public static DockerEngine of(String host, Path cli) {
    return new DockerEngine(Optional.of(host), cli, "explicit");
  }

  /** {@code $SLIPWAY_STATE_DIR}, else {@link #DEFAULT_STATE_DIR}. */
  public static Path stateDir() {
    String dir = System.getenv("SLIPWAY_STATE_DIR");
    return dir == null || dir.isBlank() ? DEFAULT_STATE_DIR : Path.of(dir);
  }

  /** True when {@code SLIPWAY_REQUIRE_DOCKER=1}: a missing engine is then a failure, not a skip. */
  public static boolean required() {
    return "1".equals(System.getenv("SLIPWAY_REQUIRE_DOCKER"));
  }

  /** The engine's address, e.g. {@code unix:///tmp/slipway-services/docker/docker.sock}. */
  public Optional<String> host() {
    return host;
  }

  /** The docker CLI that talks to it. */
  public Path cli() {
    return cli;
  }

  /** {@code DOCKER_HOST} and {@code SLIPWAY_DOCKER_CLI} for a process that should use this engine. */
  public Map<String, String> environment() {
    Map<String, String> env = new LinkedHashMap<>();
    host.ifPresent(h -> env.put("DOCKER_HOST", h));
    env.put("SLIPWAY_DOCKER_CLI", cli.toString());
    return env;
  }

  /**
   * Why the engine cannot be used, or empty when it answers. Asks the engine once and remembers
   * the answer.
   */
  public Optional<String> unavailableReason() {
    Optional<String> known = problem;
    if (known == null) {
      known = probe();
      problem = known;
    }
    return known;
  }

  /** True when the engine answers. */
  public boolean isAvailable() {
    return unavailableReason().isEmpty();
  }

  /**
   * Why tests that need the engine should be skipped, or empty when they can run.
   *
   * @throws IllegalStateException when the engine is unavailable and {@link #required()}
   */
  public Optional<String> skipReason() {
    Optional<String> reason = unavailableReason();
    if (reason.isPresent() && required()) {
      throw new IllegalStateException(
          reason.get() + " (SLIPWAY_REQUIRE_DOCKER=1: tests that need Docker must run here)");
    }
    return reason;
  }

  private Optional<String> probe() {
    String hint = "; start one with `scripts/test-services.sh up`";
    if (host.isEmpty()) {
      return Optional.of(
          "no Docker engine for tests: DOCKER_HOST is unset and "
              + origin
              + " names none"
              + hint);
    }
    if (!Files.isExecutable(cli)) {
      return Optional.of("the docker CLI " + cli + " does not exist or is not executable" + hint);
    }
    Result version;
    try {
      version = run(PROBE_TIMEOUT, List.of("version", "--format", "{{.Server.Version}}"));
    } catch (RuntimeException e) {
      return Optional.of("the Docker engine at " + host.get() + " did not answer: " + e.getMessage() + hint);
    }
    if (!version.isSuccess()) {
      return Optional.of(
          "the Docker engine at "
              + host.get()
              + " (from "
              + origin
              + ") does not answer: "
              + version.output().strip()
              + hint);
    }
    return Optional.empty();
  }

  /**
   * Runs the docker CLI against this engine and waits for it.
   *
   * @param args the CLI's arguments, e.g. {@code "image", "inspect", "app:1"}
   * @return the exit code and the combined output
   */
  public Result docker(String... args) {
    return run(COMMAND_TIMEOUT, Arrays.asList(args));
  }

  /**
   * Runs {@code docker run --rm --network=none IMAGE COMMAND...}.
   *
   * @param image the image
   * @param command the command to run; empty for the image's own CMD
   */
  public Result runRm(String image, String... command) {
    List<String> args = new ArrayList<>(List.of("run", "--rm", "--network=none", image));
    args.addAll(Arrays.asList(command));
    return run(COMMAND_TIMEOUT, args);
  }

  /** True when the engine holds {@code image}. */
  public boolean imageExists(String image) {
    return docker("image", "inspect", "--format", "{{.Id}}", image).isSuccess();
  }

  /**
   * The labels of {@code image}.
   *
   * @throws IllegalStateException when the image does not exist
   */
  public Map<String, String> labels(String image) {
    Result r =
        docker(
            "image",
            "inspect",
            "--format",
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{\"\\n\"}}{{end}}",
            image);
    if (!r.isSuccess()) {
      throw new IllegalStateException("docker image inspect " + image + " failed: " + r.output());
    }
    Map<String, String> labels = new LinkedHashMap<>();
    for (String line : r.output().split("\n")) {
      int eq = line.indexOf('=');
      if (eq > 0) {
        labels.put(line.substring(0, eq), line.substring(eq + 1));
      }
    }
    return labels;
  }

  /** Removes {@code images} (forcibly; missing ones are ignored). */
  public void removeImages(String... images) {
    if (images.length == 0) {
      return;
    }
    List<String> args = new ArrayList<>(List.of("rmi", "--force"));
    args.addAll(Arrays.asList(images));
    run(COMMAND_TIMEOUT, args);
  }

  private Result run(Duration timeout, List<String> args) {
    List<String> command = new ArrayList<>();
    command.add(cli.toString());
    command.addAll(args);
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    host.ifPresent(h -> builder.environment().put("DOCKER_HOST", h));
    try {
      Process process = builder.start();
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      Thread reader =
          new Thread(
              () -> {
                try (InputStream in = process.getInputStream()) {
                  in.transferTo(out);
                } catch (IOException e) {
                  // the process was killed
                }
              },
              "docker-cli-output");
      reader.setDaemon(true);
      reader.start();
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        throw new IllegalStateException(
            "docker " + String.join(" ", args) + " did not finish within " + timeout.toSeconds() + " s");
      }
      reader.join(TimeUnit.SECONDS.toMillis(5));
      return new Result(process.exitValue(), out.toString(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run " + cli, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while running docker " + String.join(" ", args), e);
    }
  }

  /**
   * What a docker command did.
   *
   * @param exitCode the CLI's exit code
   * @param output stdout and stderr, interleaved
   */
  public record Result(int exitCode, String output) {
    public boolean isSuccess() {
      return exitCode == 0;
    }
  }

  @Override
  public String toString() {
    return "DockerEngine[" + host.orElse("none") + " via " + cli + ", from " + origin + "]";
  }
}

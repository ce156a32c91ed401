package dev.slipway.plugin.buildkit;

import dev.slipway.worker.api.WorkerEnvironment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * How build.sh is run for one build: its arguments and its whole environment. The environment is
 * built from nothing: a few variables of the worker's (never the github token, never AWS
 * credentials, never anything not listed in {@link #PASSED_ENV}) and the job's build arguments,
 * whose values travel as {@code SLIPWAY_BUILD_ARG_<NAME>} so that they never show in build.sh's
 * arguments. Build secrets travel as files: build.sh gets {@code --secret KEY=FILE}, the path and
 * never the value, in neither its arguments nor its environment; so do registry credentials, in a
 * private {@code DOCKER_CONFIG} ({@link PrivateDockerConfig}).
 *
 * @param argv build.sh and its arguments
 * @param environment build.sh's complete environment
 */
record BuildCommand(List<String> argv, Map<String, String> environment) {

  /** The worker's environment variables that build.sh receives when the worker has them. */
  static final List<String> PASSED_ENV =
      List.of(
          "PATH", "LANG", "LC_ALL", "TZ",
          "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
          "BUILDKIT_HOST");

  static final String DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  static final String BUILD_ARG_PREFIX = "SLIPWAY_BUILD_ARG_";

  BuildCommand {
    argv = List.copyOf(argv);
    environment = Collections.unmodifiableMap(new LinkedHashMap<>(environment));
  }

  /**
   * Forms the command.
   *
   * @param settings the stage's settings
   * @param worker the worker's environment, the source of {@link #PASSED_ENV}
   * @param image the name to build the image under: the job's private name, never the caller's
   * @param paths the Dockerfile and context, resolved
   * @param choices the target, platform and cache use of this build
   * @param labels every label for the image
   * @param buildArgs the job's build arguments
   * @param secretFiles each build secret's key and the file that holds its value
   * @param uniqueName a name for this build, unique on the host
   * @param tmpDir a directory of this build's own, build.sh's {@code TMPDIR}
   * @param dockerConfig the build's private Docker config with a registry's credentials, if an
   *     earlier stage published any; else build.sh gets an empty one
   */
  static BuildCommand of(
      BuildkitSettings settings,
      WorkerEnvironment worker,
      String image,
      SourcePaths.Resolved paths,
      BuildChoices choices,
      Map<String, String> labels,
      Map<String, String> buildArgs,
      Map<String, Path> secretFiles,
      String uniqueName,
      Path tmpDir,
      Optional<Path> dockerConfig) {
    List<String> argv = new ArrayList<>();
    argv.add(settings.script().toString());
    argv.add("--backend");
    argv.add(settings.backend().configName());
    if (settings.network() != BuildkitSettings.Network.DEFAULT) {
      argv.add("--network");
      argv.add(settings.network().configName());
    }
    choices.target().ifPresent(t -> add(argv, "--target", t));
    choices.platform().ifPresent(p -> add(argv, "--platform", p));
    if (choices.noCache()) {
      argv.add("--no-cache");
    }
    settings.addr().ifPresent(a -> add(argv, "--addr", a));
    settings.tls().caCert().ifPresent(f -> add(argv, "--tlscacert", f.toString()));
    settings.tls().cert().ifPresent(f -> add(argv, "--tlscert", f.toString()));
    settings.tls().key().ifPresent(f -> add(argv, "--tlskey", f.toString()));
    settings.cacheImports().forEach(ref -> add(argv, "--import-cache", ref));
    settings.cacheExport().ifPresent(ref -> add(argv, "--export-cache", ref));
    labels.forEach((k, v) -> add(argv, "--label", k + "=" + v));
    Map<String, String> sortedArgs = new TreeMap<>(buildArgs);
    sortedArgs.keySet().forEach(name -> add(argv, "--build-arg", name));
    new TreeMap<>(secretFiles).forEach((key, file) -> add(argv, "--secret", key + "=" + file));
    argv.add("--");
    argv.add(image);
    argv.add(paths.contextDir().toString());
    argv.add(paths.dockerfile().toString());
    argv.add(uniqueName);

    Map<String, String> env = new LinkedHashMap<>();
    for (String name : PASSED_ENV) {
      worker.env(name).filter(v -> !v.isEmpty()).ifPresent(v -> env.put(name, v));
    }
    env.putIfAbsent("PATH", DEFAULT_PATH);
    settings.dockerHost().ifPresent(h -> env.put("DOCKER_HOST", h));
    env.put("SLIPWAY_DOCKER_CLI", settings.dockerCli().toString());
    env.put("TMPDIR", tmpDir.toString());
    // Not the worker's home or docker config: their registry logins and credential helpers would
    // let any job's FROM or --cache-from read private images that only the worker may. The job's
    // own registry credentials, if any, come in a config of the build's own with nothing else.
    env.put("HOME", tmpDir.toString());
    env.put("DOCKER_CONFIG", dockerConfig.orElse(tmpDir.resolve("docker-config")).toString());
    sortedArgs.forEach((name, value) -> env.put(BUILD_ARG_PREFIX + name, value));
    return new BuildCommand(argv, env);
  }

  private static void add(List<String> argv, String option, String value) {
    argv.add(option);
    argv.add(value);
  }
}

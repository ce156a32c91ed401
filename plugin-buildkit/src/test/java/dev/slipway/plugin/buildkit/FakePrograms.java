package dev.slipway.plugin.buildkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Fake {@code buildctl} and {@code docker} programs, and a wrapper around the real build.sh, that
 * record every call: arguments, environment, and for {@code docker load} what arrived on stdin.
 * Nothing reaches a network: the fakes only print.
 */
final class FakePrograms {
  private final Path records;
  final Path bin;
  final Path docker;
  final Path buildctl;
  final Path recordingBuildScript;

  /**
   * One recorded call.
   *
   * @param program the program's name: build.sh, buildctl or docker
   * @param argv its arguments, without the program itself
   * @param env its complete environment
   * @param raw argv and environment as the bytes the process saw, for leak checks
   * @param dir where the call was recorded; {@code secret-<id>} holds what a {@code
   *     id=<id>,src=<file>} argument's file held when the program ran, {@code mode-<id>} and
   *     {@code dirmode-<id>} the file's and its directory's permissions
   */
  record Call(String program, List<String> argv, Map<String, String> env, String raw, Path dir) {
    /** What the secret file {@code id} held when this program ran. */
    String secretSeen(String id) throws IOException {
      return Files.readString(dir.resolve("secret-" + id), StandardCharsets.UTF_8);
    }

    /** The {@code config.json} in {@code DOCKER_CONFIG} when this program ran, if there was one. */
    java.util.Optional<String> dockerConfigSeen() throws IOException {
      Path file = dir.resolve("docker-config.json");
      return Files.exists(file) ? java.util.Optional.of(Files.readString(file, StandardCharsets.UTF_8))
          : java.util.Optional.empty();
    }

    /** The octal modes of {@code DOCKER_CONFIG/config.json} and of its directory, e.g. {@code 600 700}. */
    String dockerConfigModes() throws IOException {
      return Files.readString(dir.resolve("docker-config-modes")).strip();
    }

    /** The octal modes of secret {@code id}'s file and of its directory, e.g. {@code 600 700}. */
    String secretModes(String id) throws IOException {
      return (Files.readString(dir.resolve("mode-" + id)) + " " + Files.readString(dir.resolve("dirmode-" + id)))
          .replace("\n", "");
    }
  }

  FakePrograms(Path dir) {
    records = dir.resolve("records");
    bin = dir.resolve("bin");
    try {
      Files.createDirectories(records);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    String record =
        "d='" + records + "'/$(date +%s%N)-$$-\"$prog\"\n"
            + "mkdir -p \"$d\"\n"
            + "printf '%s\\0' \"$@\" >\"$d/argv\"\n"
            + "env -0 >\"$d/env\"\n"
            // What --secret id=ID,src=FILE hands BuildKit: the file's content and modes, now.
            + "for a in \"$@\"; do\n"
            + "  case \"$a\" in\n"
            + "  id=*,src=*) sid=${a%%,*}; sid=${sid#id=}; src=${a#*,src=}\n"
            + "    cat \"$src\" >\"$d/secret-$sid\"; stat -c %a \"$src\" >\"$d/mode-$sid\"\n"
            + "    stat -c %a \"$(dirname \"$src\")\" >\"$d/dirmode-$sid\" ;;\n"
            + "  esac\n"
            + "done\n"
            // What DOCKER_CONFIG held when the program ran: the registry credentials it could use.
            + "if [ -n \"$DOCKER_CONFIG\" ] && [ -f \"$DOCKER_CONFIG/config.json\" ]; then\n"
            + "  cat \"$DOCKER_CONFIG/config.json\" >\"$d/docker-config.json\"\n"
            + "  stat -c %a \"$DOCKER_CONFIG/config.json\" \"$DOCKER_CONFIG\" | tr '\\n' ' ' >\"$d/docker-config-modes\"\n"
            + "fi\n";
    buildctl =
        Fixtures.executable(
            bin,
            "buildctl",
            "#!/bin/sh\nprog=buildctl\n"
                + record
                + "for a in \"$@\"; do\n"
                + "  case \"$a\" in\n"
                + "  debug)\n"
                + "    if [ -e '" + dir.resolve("buildkitd-down") + "' ]; then\n"
                + "      echo 'error: failed to list workers: Unavailable: connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused\"' >&2\n"
                + "      exit 1\n"
                + "    fi\n"
                + "    echo 'ID PLATFORMS'; echo 'fake0 linux/amd64'; exit 0 ;;\n"
                + "  build)\n"
                + "    echo '#1 [internal] fake buildctl build' >&2\n"
                + "    echo '#1 DONE 0.0s' >&2\n"
                + "    printf 'FAKE-DOCKER-ARCHIVE'\n"
                + "    exit 0 ;;\n"
                + "  esac\n"
                + "done\n"
                + "echo \"fake buildctl: unexpected call $*\" >&2; exit 64\n");
    docker =
        Fixtures.executable(
            bin,
            "docker",
            "#!/bin/sh\nprog=docker\n"
                + record
                + "case \"$1\" in\n"
                + "version) echo 20.10.24 ;;\n"
                + "load) cat >\"$d/stdin\"; echo 'Loaded image: fake' ;;\n"
                + "build) echo '#1 fake docker build' >&2 ;;\n"
                + "*) echo \"fake docker: unexpected call $*\" >&2; exit 64 ;;\n"
                + "esac\n");
    recordingBuildScript =
        Fixtures.executable(
            dir,
            "recording-build.sh",
            "#!/bin/sh\nprog=build.sh\n"
                + record
                + "exec '" + Fixtures.HOME.resolve("scripts/build.sh") + "' \"$@\"\n");
  }

  /** Makes {@code buildctl debug workers} fail as an unreachable buildkitd would. */
  void buildkitdDown(Path dir) throws IOException {
    Files.writeString(dir.resolve("buildkitd-down"), "");
  }

  /** Every call so far, oldest first. */
  List<Call> calls() throws IOException {
    List<Call> calls = new ArrayList<>();
    try (Stream<Path> dirs = Files.list(records)) {
      for (Path d : dirs.sorted().toList()) {
        String name = d.getFileName().toString();
        String program = name.substring(name.lastIndexOf('-') + 1);
        if (name.endsWith("-build.sh")) {
          program = "build.sh";
        }
        String argvRaw = Files.readString(d.resolve("argv"), StandardCharsets.UTF_8);
        String envRaw = Files.readString(d.resolve("env"), StandardCharsets.UTF_8);
        Map<String, String> env = new LinkedHashMap<>();
        for (String entry : split(envRaw)) {
          int eq = entry.indexOf('=');
          env.put(entry.substring(0, eq), entry.substring(eq + 1));
        }
        calls.add(new Call(program, split(argvRaw), env, argvRaw + "\n" + envRaw, d));
      }
    }
    return calls;
  }

  /** What {@code docker load} read from its stdin in the last call that had one. */
  String loadedArchive() throws IOException {
    try (Stream<Path> files = Files.walk(records)) {
      Path stdin = files.filter(p -> p.getFileName().toString().equals("stdin")).findFirst().orElseThrow();
      return Files.readString(stdin, StandardCharsets.UTF_8);
    }
  }

  private static List<String> split(String nulSeparated) {
    if (nulSeparated.isEmpty()) {
      return List.of();
    }
    String trimmed = nulSeparated.endsWith("\0") ? nulSeparated.substring(0, nulSeparated.length() - 1) : nulSeparated;
    return Arrays.asList(trimmed.split("\0", -1));
  }
}

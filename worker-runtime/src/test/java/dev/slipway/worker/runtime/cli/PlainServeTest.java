package dev.slipway.worker.runtime.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which command lines start the worker without picocli ({@link WorkerCli#plainServe}), and that
 * the short path and picocli's give an operator the same exit code and message.
 */
class PlainServeTest {
  @TempDir Path dir;

  @Test
  void commandLinesThatOnlySayServeTakeTheShortPath() {
    assertEquals(Optional.of(Optional.empty()), WorkerCli.plainServe());
    assertEquals(Optional.of(Optional.empty()), WorkerCli.plainServe("serve"));
    assertEquals(Optional.of(Optional.of(Path.of("w.conf"))),
        WorkerCli.plainServe("--config", "w.conf"));
    assertEquals(Optional.of(Optional.of(Path.of("w.conf"))),
        WorkerCli.plainServe("serve", "-c", "w.conf"));
    assertEquals(Optional.of(Optional.of(Path.of("w.conf"))),
        WorkerCli.plainServe("--config=w.conf", "serve"));
    assertEquals(Optional.of(Optional.of(Path.of("w.conf"))),
        WorkerCli.plainServe("-c", "w.conf", "serve"));
  }

  @Test
  void everythingElseGoesToPicocli() {
    String[][] others = {
        {"serve", "--help"}, {"--help"}, {"--version"}, {"serve", "serve"},
        {"--config", "a.conf", "--config", "b.conf"}, {"--config=a.conf", "-c", "b.conf"},
        {"--config"}, {"--config", ""}, {"--config", "-x"}, {"--config", "@args.txt"},
        {"--config="}, {"--config=@args.txt"}, {"@args.txt"}, {"-c=w.conf"},
        {"serve", "--"}, {"check-config"}, {"plugins"}, {"ping", "--address", "x:1"},
        {"serve", "extra"},
    };
    for (String[] args : others) {
      assertEquals(Optional.empty(), WorkerCli.plainServe(args), String.join(" ", args));
    }
  }

  @Test
  void aBadConfigurationGivesTheSameExitCodeAndMessageOnBothPaths() throws Exception {
    Path config = dir.resolve("bad.conf");
    Files.writeString(config, "worker { port = not-a-port, pipeline = [no-such-stage] }\n");
    Result shortPath = run("serve", "--config", config.toString());
    // "-c=FILE" is the same command line to picocli, but not one the short path takes.
    Result picocli = run("serve", "-c=" + config);
    assertEquals(WorkerCli.EXIT_CONFIG, shortPath.code, shortPath.err);
    assertEquals(WorkerCli.EXIT_CONFIG, picocli.code, picocli.err);
    assertTrue(shortPath.err.startsWith("slipway: the worker cannot start"), shortPath.err);
    // Every problem at once, on both paths: the port and the unknown stage.
    assertTrue(shortPath.err.contains("worker.port"), shortPath.err);
    assertTrue(shortPath.err.contains("no-such-stage"), shortPath.err);
    assertEquals(shortPath.err, picocli.err);
    assertEquals("", shortPath.out);
    assertEquals("", picocli.out);
  }

  @Test
  void aMissingConfigurationFileIsSaidTheSameWayOnBothPaths() {
    Path missing = dir.resolve("missing.conf");
    Result shortPath = run("--config", missing.toString());
    Result picocli = run("--config=" + missing, "serve", "--");
    assertEquals(WorkerCli.EXIT_CONFIG, shortPath.code, shortPath.err);
    assertTrue(shortPath.err.contains(missing.toString()), shortPath.err);
    assertEquals(shortPath.code, picocli.code, picocli.err);
    assertEquals(shortPath.err, picocli.err);
  }

  private record Result(int code, String out, String err) {}

  private static Result run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = WorkerCli.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
    return new Result(code, out.toString(), err.toString());
  }
}

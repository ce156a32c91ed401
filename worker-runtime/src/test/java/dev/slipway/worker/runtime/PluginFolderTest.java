package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Third-party plugins dropped into {@code plugins/}: compiled here with {@code javac} against the
 * worker-api jar alone, outside the reactor, and loaded each into its own module layer.
 */
class PluginFolderTest {
  @TempDir static Path build;
  static Path greetingV1;
  static Path greetingV2;
  static Path helloPlugin;
  static Path howdyPlugin;
  static Path splitJar;

  @TempDir Path dir;

  @BeforeAll
  static void compilePlugins() throws Exception {
    greetingV1 = module("com.example.greeting", "1.0", List.of(), Map.of(
        "module-info.java", "module com.example.greeting { exports com.example.greeting; }",
        "com/example/greeting/Greeting.java", "package com.example.greeting;\n"
            + "public final class Greeting { public static String text() { return \"greeting v1\"; } }"));
    greetingV2 = module("com.example.greeting", "2.0", List.of(), Map.of(
        "module-info.java", "module com.example.greeting { exports com.example.greeting; }",
        "com/example/greeting/Greeting.java", "package com.example.greeting;\n"
            + "public final class Greeting { public static String text() { return \"greeting v2\"; } }"));
    helloPlugin = plugin("com.example.hello", "hello", greetingV1);
    howdyPlugin = plugin("com.example.howdy", "howdy", greetingV2);
    // Another module that also holds package com.example.greeting: a split package.
    splitJar = module("com.example.split", "1.0", List.of(), Map.of(
        "module-info.java", "module com.example.split { }",
        "com/example/greeting/Other.java", "package com.example.greeting;\n"
            + "public final class Other { }"));
  }

  private static Path plugin(String module, String id, Path greeting) throws Exception {
    String pkg = module;
    String cls = Character.toUpperCase(id.charAt(0)) + id.substring(1) + "StageFactory";
    return module(module, "1.0", List.of(apiJar(), configJar(), greeting), Map.of(
        "module-info.java", "module " + module + " {\n"
            + "  requires dev.slipway.worker.api;\n  requires com.example.greeting;\n"
            + "  provides dev.slipway.worker.api.StageFactory with " + pkg + "." + cls + ";\n}",
        pkg.replace('.', '/') + "/" + cls + ".java", "package " + pkg + ";\n"
            + "import com.typesafe.config.Config;\n"
            + "import dev.slipway.worker.api.*;\n"
            + "public final class " + cls + " implements StageFactory {\n"
            + "  public String id() { return \"" + id + "\"; }\n"
            + "  public Stage create(Config config, WorkerEnvironment env) {\n"
            + "    String salutation = config.getString(\"salutation\");\n"
            + "    return context -> context.log().line(\"" + id + ": \"\n"
            + "        + com.example.greeting.Greeting.text() + \" \" + salutation);\n"
            + "  }\n}\n",
        "reference.conf", "worker.stages." + id + " {\n  timeout = 1m\n"
            + "  salutation = \"from " + id + "'s reference.conf\"\n}\n"));
  }

  /** The jar a module of the boot layer came from, e.g. the worker-api jar. */
  private static Path jarOf(String module) {
    return ModuleLayer.boot().configuration().findModule(module)
        .flatMap(m -> m.reference().location()).map(Path::of).orElseThrow();
  }

  private static Path apiJar() {
    return jarOf("dev.slipway.worker.api");
  }

  private static Path configJar() {
    return jarOf("typesafe.config");
  }

  /** Compiles and jars a module with the JDK's own javac and jar, outside Maven. */
  private static Path module(String name, String version, List<Path> modulePath,
      Map<String, String> files) throws Exception {
    Path src = build.resolve("src-" + name + "-" + version);
    Path classes = build.resolve("classes-" + name + "-" + version);
    List<String> sources = new ArrayList<>();
    for (Map.Entry<String, String> file : files.entrySet()) {
      Path path = src.resolve(file.getKey());
      Files.createDirectories(path.getParent());
      Files.writeString(path, file.getValue());
      if (file.getKey().endsWith(".java")) {
        sources.add(path.toString());
      } else {
        Files.createDirectories(classes);
        Files.writeString(classes.resolve(file.getKey()), file.getValue());
      }
    }
    List<String> javac = new ArrayList<>(List.of(tool("javac"), "--release", "17",
        "-d", classes.toString()));
    if (!modulePath.isEmpty()) {
      javac.addAll(List.of("--module-path", modulePath.stream().map(Path::toString)
          .collect(Collectors.joining(":"))));
    }
    javac.addAll(sources);
    run(javac);
    Path jar = build.resolve(name + "-" + version + ".jar");
    run(List.of(tool("jar"), "--create", "--file", jar.toString(), "--module-version", version,
        "-C", classes.toString(), "."));
    return jar;
  }

  private static String tool(String name) {
    return Path.of(System.getProperty("java.home"), "bin", name).toString();
  }

  private static void run(List<String> command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, command + ":\n" + out);
  }

  private Path folder(String name, Path... jars) throws IOException {
    Path folder = dir.resolve("home/plugins/" + name);
    Files.createDirectories(folder);
    for (Path jar : jars) {
      Files.copy(jar, folder.resolve(jar.getFileName()));
    }
    return folder;
  }

  private WorkerOptions options(String hocon) throws IOException {
    Path home = dir.resolve("home");
    Files.createDirectories(home);
    return new WorkerOptions(Optional.of(TestWorkers.config(dir, hocon)), dir,
        Environment.of(Map.of()), new Properties(), home);
  }

  @Test
  void droppedInPluginsRunInAJobEachWithItsOwnVersionOfALibrary() throws Exception {
    folder("hello", helloPlugin, greetingV1);
    folder("howdy", howdyPlugin, greetingV2);
    WorkerOptions options = options("worker.pipeline = [hello, test-publish, howdy]\n"
        + "worker.stages.howdy.salutation = \"partner\"");

    PluginRegistry registry = PluginRegistry.discover(options.pluginsDir());
    DiscoveredStage hello = registry.find("hello").orElseThrow();
    assertEquals("com.example.hello", hello.moduleName());
    assertEquals("1.0", hello.version());
    assertTrue(hello.source().endsWith("plugins/hello"), hello.source());

    Worker worker = Worker.prepare(options, registry, null);
    worker.start();
    ManagedChannel channel = TestWorkers.channel(worker);
    try {
      List<String> lines = new ArrayList<>();
      JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
          .streamJob(TestWorkers.request().build())
          .forEachRemaining(e -> {
            if (e.getEventCase() == JobEvent.EventCase.LOG) {
              lines.add(e.getLog().getLine());
            }
          });
      assertTrue(lines.contains("hello: greeting v1 from hello's reference.conf"), lines.toString());
      assertTrue(lines.contains("howdy: greeting v2 partner"), lines.toString());
    } finally {
      TestWorkers.close(worker, channel);
    }
  }

  @Test
  void aFolderMissingADependencyStopsStartUpNamingTheFolder() throws Exception {
    Path broken = folder("hello", helloPlugin);
    StartupException e = assertThrows(StartupException.class,
        () -> PluginRegistry.discover(broken.getParent()));
    String message = e.getMessage();
    assertTrue(message.contains(broken.toString()), message);
    assertTrue(message.contains("com.example.greeting") && message.contains("not found"),
        message);
  }

  @Test
  void theSameStageIdInTwoFoldersStopsStartUpNamingBoth() throws Exception {
    folder("hello", helloPlugin, greetingV1);
    Path copy = folder("hello-copy", helloPlugin, greetingV2);
    StartupException e = assertThrows(StartupException.class,
        () -> PluginRegistry.discover(copy.getParent()));
    String message = e.getMessage();
    assertTrue(message.contains("stage id 'hello' is provided twice"), message);
    assertTrue(message.contains("plugins/hello)") && message.contains("plugins/hello-copy)"),
        message);
  }

  @Test
  void aSplitPackageStopsStartUpNamingTheFolder() throws Exception {
    Path split = folder("hello", helloPlugin, greetingV1, splitJar);
    StartupException e = assertThrows(StartupException.class,
        () -> PluginRegistry.discover(split.getParent()));
    String message = e.getMessage();
    assertTrue(message.contains(split.toString()), message);
    assertTrue(message.contains("com.example.greeting") && message.contains("split package"),
        message);
  }

  @Test
  void anEmptyFolderIsReported() throws Exception {
    Path empty = folder("empty");
    StartupException e = assertThrows(StartupException.class,
        () -> PluginRegistry.discover(empty.getParent()));
    assertTrue(e.getMessage().contains("holds no jar"), e.getMessage());
  }

  @Test
  void noPluginsDirectoryMeansOnlyTheBundledStages() throws Exception {
    PluginRegistry registry = PluginRegistry.discover(dir.resolve("no-such-dir"));
    assertTrue(registry.find("test-publish").isPresent());
    try (Stream<DiscoveredStage> s = registry.all().stream()) {
      assertTrue(s.allMatch(d -> d.source().equals("boot layer")));
    }
  }
}

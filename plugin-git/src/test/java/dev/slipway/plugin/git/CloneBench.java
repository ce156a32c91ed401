package dev.slipway.plugin.git;

import com.typesafe.config.ConfigFactory;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageKeys;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The clone alone, timed: {@code git clone --depth 1 --branch main} against the git stage without
 * its cache, cold (a mirror cache that has never seen the repository), a second time (from the
 * mirror, no ready checkout yet), from its cache (unchanged: the ready checkout) and after one new
 * commit, interleaved round by round, all against one {@link GitHttpServer} ({@code git
 * http-backend} on 127.0.0.1, one process per request). Run by {@code scripts/bench-clone.sh}.
 *
 * <pre>
 * CloneBench [--rounds N] [--repo BARE_REPOSITORY_DIR] [--work DIR] [--verbose]
 * </pre>
 *
 * <p>After each of the stage's clones the bench waits until the stage's background work (making
 * the next job's checkout ready, see the README) is done, as it would be between two jobs, and
 * prints how long that took after the cold clone; it is not part of any clone's time.
 *
 * <p>Without {@code --repo} it makes a repository of a few thousand commits and a few tens of
 * megabytes. The stage runs in this JVM after one warm-up round, as it does in a worker that has
 * served jobs already; each figure is the time of {@code Stage.execute}, from the call to the
 * checkout on disk.
 */
public final class CloneBench {
  private static final String TOKEN = "bench-" + Long.toHexString(System.nanoTime());
  private static boolean verbose;

  private CloneBench() {}

  public static void main(String[] args) throws Exception {
    int rounds = 7;
    Path repo = null;
    Path work = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--rounds" -> rounds = Integer.parseInt(args[++i]);
        case "--repo" -> repo = Path.of(args[++i]).toAbsolutePath();
        case "--work" -> work = Path.of(args[++i]).toAbsolutePath();
        case "--verbose" -> verbose = true;
        default -> throw new IllegalArgumentException("unknown argument " + args[i]
            + "; use --rounds N, --repo BARE_REPOSITORY_DIR, --work DIR");
      }
    }
    boolean ownWork = work == null;
    if (ownWork) {
      work = Files.createTempDirectory("slipway-bench-clone-");
    }
    Path root;
    String name;
    if (repo == null) {
      root = work.resolve("repos");
      name = "bench.git";
      long start = System.nanoTime();
      generate(new GitRepos(root), name);
      System.out.printf("made %s in %.1f s%n", name, (System.nanoTime() - start) / 1e9);
    } else {
      // Served as a copy: the bench pushes a commit to it.
      root = work.resolve("repos");
      name = repo.getFileName().toString();
      Files.createDirectories(root);
      GitRepos.git(root, "clone", "-q", "--bare", repo.toString(), root.resolve(name).toString());
    }
    Path bare = root.resolve(name);
    String branch = GitRepos.git(bare, "symbolic-ref", "--short", "HEAD");
    try (GitHttpServer server =
        GitHttpServer.builder(root).credentials("x-access-token", TOKEN).start()) {
      String url = server.url(name);
      describe(bare, branch);
      Map<String, List<Long>> times = new LinkedHashMap<>();
      for (String what : List.of("git clone --depth 1", "stage, cache off", "stage, cold",
          "stage, 2nd clone (mirror)", "stage, from the cache", "stage, cache + 1 new commit",
          "  (background, after 2nd)")) {
        times.put(what, new ArrayList<>());
      }
      for (int round = 0; round <= rounds; round++) {
        Path dir = Files.createDirectories(work.resolve("round-" + round));
        long cli = cli(url, branch, dir.resolve("cli"));
        Stage off = stage(dir.resolve("no-cache"), false);
        long uncached = stage(off, url, branch, dir.resolve("off"));
        off.close();
        Stage stage = stage(dir.resolve("cache"), true);
        long cold = stage(stage, url, branch, dir.resolve("cold"));
        idle(stage);
        // The second clone: the mirror has it all, no checkout is ready (none is made for a
        // repository's first clone); it makes one for the next.
        long mirrored = stage(stage, url, branch, dir.resolve("mirrored"));
        // As between two jobs: the stage's background work (the ready checkout) is done.
        long background = idle(stage);
        long cached = stage(stage, url, branch, dir.resolve("cached"));
        idle(stage);
        newCommit(work, bare, branch, round);
        long changed = stage(stage, url, branch, dir.resolve("changed"));
        idle(stage);
        stage.close();
        deleteTree(dir);
        if (round == 0) {
          System.out.printf("warm-up round (not counted): git %d ms, cache off %d ms, cold %d ms,"
              + " 2nd %d ms, cache %d ms, cache + commit %d ms, background after 2nd %d ms%n",
              cli, uncached, cold, mirrored, cached, changed, background);
          continue;
        }
        times.get("  (background, after 2nd)").add(background);
        times.get("git clone --depth 1").add(cli);
        times.get("stage, cache off").add(uncached);
        times.get("stage, cold").add(cold);
        times.get("stage, 2nd clone (mirror)").add(mirrored);
        times.get("stage, from the cache").add(cached);
        times.get("stage, cache + 1 new commit").add(changed);
      }
      double git = median(times.get("git clone --depth 1"));
      System.out.printf("%d rounds, interleaved; median (min-max), ratio to git's median:%n",
          rounds);
      for (Map.Entry<String, List<Long>> entry : times.entrySet()) {
        List<Long> t = entry.getValue();
        double median = median(t);
        boolean clone = !entry.getKey().startsWith(" ");
        System.out.printf(Locale.ROOT, "  %-30s %6.0f ms (%d-%d)%s%n", entry.getKey(), median,
            t.stream().mapToLong(Long::longValue).min().orElse(0),
            t.stream().mapToLong(Long::longValue).max().orElse(0),
            clone ? String.format(Locale.ROOT, "  %.2fx", median / git) : "");
      }
    } finally {
      deleteTree(ownWork ? work : root);
    }
  }

  /**
   * A repository like a service's: {@code 1500} text files of about 14 KiB in 50 folders, a
   * binary asset of 4 MiB, and 3000 commits each changing a few lines of one file.
   */
  static void generate(GitRepos repos, String name) throws IOException {
    Random random = new Random(12);
    String[] words = new String[2000];
    for (int i = 0; i < words.length; i++) {
      StringBuilder w = new StringBuilder();
      for (int j = 0, n = 3 + random.nextInt(8); j < n; j++) {
        w.append((char) ('a' + random.nextInt(26)));
      }
      words[i] = w.toString();
    }
    int files = 1500;
    List<String> paths = new ArrayList<>();
    List<List<String>> contents = new ArrayList<>();
    GitRepos.Builder builder = repos.repository(name);
    for (int f = 0; f < files; f++) {
      String path = "src/module-" + (f % 50) + "/File" + f + ".java";
      List<String> lines = new ArrayList<>();
      for (int l = 0; l < 240; l++) {
        StringBuilder line = new StringBuilder("    ");
        while (line.length() < 56) {
          line.append(words[random.nextInt(words.length)]).append(' ');
        }
        lines.add(line.toString());
      }
      paths.add(path);
      contents.add(lines);
      builder.file(path, String.join("\n", lines) + "\n");
    }
    byte[] asset = new byte[4 * 1024 * 1024];
    random.nextBytes(asset);
    builder.file("assets/data.bin", asset);
    builder.file("Dockerfile", "FROM scratch\nCOPY . /app\n");
    builder.commit("initial import");
    for (int c = 1; c < 3000; c++) {
      int f = random.nextInt(files);
      List<String> lines = contents.get(f);
      for (int k = 0; k < 3; k++) {
        lines.set(random.nextInt(lines.size()), "    // change " + c + " " + words[random.nextInt(
            words.length)]);
      }
      builder.file(paths.get(f), String.join("\n", lines) + "\n");
      builder.commit("change " + c);
    }
    Path bare = builder.build();
    // As a server keeps it: one pack, deltas found.
    GitRepos.git(bare, "repack", "-adq", "--window=50");
  }

  private static void describe(Path bare, String branch) throws IOException {
    String commits = GitRepos.git(bare, "rev-list", "--count", branch);
    String tree = GitRepos.git(bare, "ls-tree", "-r", "-l", branch);
    long files = 0;
    long bytes = 0;
    for (String line : tree.split("\n")) {
      String[] fields = line.trim().split("\\s+");
      if (fields.length >= 4 && fields[1].equals("blob")) {
        files++;
        bytes += Long.parseLong(fields[3]);
      }
    }
    long pack = 0;
    try (Stream<Path> packs = Files.list(bare.resolve("objects/pack"))) {
      for (Path p : packs.toList()) {
        pack += Files.size(p);
      }
    }
    System.out.printf(Locale.ROOT, "repository: %s commits on %s; %d files, %.1f MiB checked out;"
        + " %.1f MiB of packs on the server%n", commits, branch, files, bytes / 1048576.0,
        pack / 1048576.0);
  }

  /**
   * Writes dirty pages out before a timed clone, so that no clone pays for the writeback of the
   * one before it (each writes some 40 MiB).
   */
  private static void settle() throws Exception {
    new ProcessBuilder("sync").inheritIO().start().waitFor();
  }

  /** {@code git clone --depth 1}, the token as a basic Authorization header, as the stage sends. */
  private static long cli(String url, String branch, Path dir) throws Exception {
    settle();
    String basic = Base64.getEncoder().encodeToString(("x-access-token:" + TOKEN)
        .getBytes(StandardCharsets.UTF_8));
    ProcessBuilder pb = new ProcessBuilder("git", "clone", "-q", "--depth", "1", "--branch",
        branch, "--single-branch", url, dir.toString()).redirectErrorStream(true);
    Map<String, String> env = pb.environment();
    env.put("GIT_CONFIG_NOSYSTEM", "1");
    env.put("GIT_CONFIG_GLOBAL", "/dev/null");
    env.put("GIT_TERMINAL_PROMPT", "0");
    env.put("GIT_CONFIG_COUNT", "1");
    env.put("GIT_CONFIG_KEY_0", "http.extraHeader");
    env.put("GIT_CONFIG_VALUE_0", "Authorization: Basic " + basic);
    long start = System.nanoTime();
    Process process = pb.start();
    String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!process.waitFor(10, TimeUnit.MINUTES) || process.exitValue() != 0) {
      throw new IOException("git clone failed: " + out);
    }
    return (System.nanoTime() - start) / 1_000_000;
  }

  private static Stage stage(Path cache, boolean enabled) throws Exception {
    return new GitStageFactory().create(
        ConfigFactory.parseMap(Map.of("allowed-schemes", List.of("http"), "cache.dir",
                cache.toString(), "max-checkout-size", "8GiB", "cache.max-size", "64GiB",
                "cache.enabled", enabled))
            .withFallback(GitTestSupport.reference()).resolve(),
        GitTestSupport.environment());
  }

  private static long stage(Stage stage, String url, String branch, Path workspace)
      throws Exception {
    Files.createDirectories(workspace);
    RecordingJobContext ctx = new RecordingJobContext(
        RecordingJobContext.request(url, branch, TOKEN, "bench:1"), workspace);
    settle();
    long start = System.nanoTime();
    stage.validate(ctx.request(), ctx.options());
    stage.execute(ctx);
    long millis = (System.nanoTime() - start) / 1_000_000;
    if (verbose) {
      ctx.lines().stream().filter(l -> !l.contains("%")).forEach(l -> System.out.println("    " + l));
    }
    if (ctx.get(StageKeys.COMMIT_SHA).isEmpty()) {
      throw new IllegalStateException("no commit: " + ctx.lines());
    }
    return millis;
  }

  /** One commit more on the branch, changing one file, as a push would. */
  private static void newCommit(Path work, Path bare, String branch, int round)
      throws IOException {
    Path clone = work.resolve("push-" + round);
    GitRepos.git(work, "clone", "-q", "--depth", "1", "--branch", branch, "file://" + bare,
        clone.toString());
    Files.writeString(clone.resolve("BENCH_ROUND"), round + "\n");
    GitRepos.git(clone, "add", "-A");
    GitRepos.git(clone, "commit", "-q", "-m", "bench round " + round);
    GitRepos.git(clone, "push", "-q", "origin", branch);
    deleteTree(clone);
  }

  /** Waits for the stage's work between jobs; how long that took. */
  private static long idle(Stage stage) throws InterruptedException {
    long start = System.nanoTime();
    ((GitStage) stage).awaitMaintenance();
    return (System.nanoTime() - start) / 1_000_000;
  }

  private static double median(List<Long> values) {
    List<Long> sorted = values.stream().sorted().toList();
    int n = sorted.size();
    return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2.0;
  }

  private static void deleteTree(Path dir) {
    GitTestSupport.deleteTree(dir);
  }
}

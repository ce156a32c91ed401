package dev.slipway.worker.testkit;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Makes bare git repositories for tests with the real git CLI, under one root folder that a
 * {@link GitHttpServer} serves. History is written with {@code git fast-import}, so a repository
 * with hundreds of commits or megabytes of content takes a fraction of a second.
 *
 * <pre>{@code
 * GitRepos repos = new GitRepos(tempDir);
 * repos.repository("app.git")
 *     .file("Dockerfile", "FROM local/busybox:1\n").commit("initial")
 *     .branch("feature").file("feature.txt", "on feature\n").commit("feature work")
 *     .build();
 * String sha = repos.revParse("app.git", "refs/heads/main");
 * }</pre>
 *
 * <p>git runs with no system or user configuration, so a developer's settings change nothing.
 */
public final class GitRepos {
  private final Path root;

  /** Repositories will be created directly under {@code root}, which need not exist yet. */
  public GitRepos(Path root) {
    this.root = Objects.requireNonNull(root, "root").toAbsolutePath();
  }

  /** The folder that holds the repositories: the server's project root. */
  public Path root() {
    return root;
  }

  /** The folder of the bare repository {@code name}. */
  public Path path(String name) {
    return root.resolve(name);
  }

  /** Starts describing the bare repository {@code name}, e.g. {@code "app.git"}. */
  public Builder repository(String name) {
    return new Builder(name);
  }

  /** {@code git rev-parse rev} in repository {@code name}: a full sha. */
  public String revParse(String name, String rev) throws IOException {
    return git(path(name), "rev-parse", "--verify", "--end-of-options", rev);
  }

  /**
   * Runs git in {@code dir} with no system or user configuration.
   *
   * @return its standard output, trimmed
   * @throws IOException when git fails; the message holds its exit code and standard error
   */
  public static String git(Path dir, String... args) throws IOException {
    return git(dir, null, args);
  }

  private static String git(Path dir, byte[] stdin, String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add("git");
    command.addAll(List.of(args));
    Path err = Files.createTempFile("git-stderr-", ".txt");
    Path in = stdin == null ? null : Files.createTempFile("git-stdin-", ".bin");
    try {
      ProcessBuilder pb =
          new ProcessBuilder(command)
              .directory(dir.toFile())
              .redirectError(err.toFile());
      if (in != null) {
        Files.write(in, stdin);
        pb.redirectInput(in.toFile());
      } else {
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
      }
      Map<String, String> env = pb.environment();
      env.put("GIT_CONFIG_NOSYSTEM", "1");
      env.put("GIT_CONFIG_GLOBAL", "/dev/null");
      env.put("GIT_TERMINAL_PROMPT", "0");
      env.put("LC_ALL", "C");
      env.put("GIT_AUTHOR_NAME", "Slipway Test");
      env.put("GIT_AUTHOR_EMAIL", "test@slipway.invalid");
      env.put("GIT_COMMITTER_NAME", "Slipway Test");
      env.put("GIT_COMMITTER_EMAIL", "test@slipway.invalid");
      Process process = pb.start();
      String out;
      try (InputStream stdout = process.getInputStream()) {
        out = new String(stdout.readAllBytes(), StandardCharsets.UTF_8);
      }
      try {
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
          process.destroyForcibly();
          throw new IOException(command + " did not finish within 60 s");
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new IOException(command + " interrupted", e);
      }
      if (process.exitValue() != 0) {
        throw new IOException(
            command
                + " failed in "
                + dir
                + " (exit "
                + process.exitValue()
                + "): "
                + Files.readString(err).trim());
      }
      return out.trim();
    } finally {
      Files.deleteIfExists(err);
      if (in != null) {
        Files.deleteIfExists(in);
      }
    }
  }

  /**
   * Describes one bare repository as a sequence of commits on branches. Files staged with {@link
   * #file} go into the next {@link #commit} of the current branch and stay in later ones.
   */
  public final class Builder {
    private final String name;
    private final ByteArrayOutputStream stream = new ByteArrayOutputStream();
    private final Map<String, Integer> tips = new HashMap<>();
    private final Map<String, byte[]> staged = new LinkedHashMap<>();
    private final Map<String, String> stagedLinks = new LinkedHashMap<>();
    private final Map<String, String> submodules = new LinkedHashMap<>();
    private String defaultBranch = "main";
    private String current = "main";
    private int marks;
    private long clock = 1_700_000_000L;

    private Builder(String name) {
      this.name = Objects.requireNonNull(name, "name");
    }

    /** The branch that HEAD names and the first commits go to; {@code main} unless set. */
    public Builder defaultBranch(String branch) {
      if (!tips.isEmpty()) {
        throw new IllegalStateException("set the default branch before the first commit");
      }
      this.defaultBranch = branch;
      this.current = branch;
      return this;
    }

    /** Adds or changes a text file (UTF-8) in the next commit. */
    public Builder file(String path, String content) {
      return file(path, content.getBytes(StandardCharsets.UTF_8));
    }

    /** Adds or changes a file in the next commit. */
    public Builder file(String path, byte[] content) {
      staged.put(path, content.clone());
      return this;
    }

    /**
     * Adds {@code count} files of {@code size} random bytes each ({@code blob-N.bin}) to the next
     * commit. Random bytes do not compress, so they make the pack as large as they are.
     */
    public Builder randomFiles(int count, int size, long seed) {
      Random random = new Random(seed);
      for (int i = 0; i < count; i++) {
        byte[] bytes = new byte[size];
        random.nextBytes(bytes);
        staged.put("blob-" + i + ".bin", bytes);
      }
      return this;
    }

    /**
     * Adds a submodule at {@code path} pinned to {@code commit} of the repository at {@code url}
     * (a gitlink and a {@code .gitmodules} entry) to the next commit.
     */
    public Builder submodule(String path, String url, String commit) {
      submodules.put(path, url);
      stagedLinks.put(path, commit);
      StringBuilder modules = new StringBuilder();
      submodules.forEach(
          (p, u) ->
              modules
                  .append("[submodule \"")
                  .append(p)
                  .append("\"]\n\tpath = ")
                  .append(p)
                  .append("\n\turl = ")
                  .append(u)
                  .append('\n'));
      return file(".gitmodules", modules.toString());
    }

    /** Records a commit on the current branch with everything staged since the last one. */
    public Builder commit(String message) {
      int mark = ++marks;
      line("commit refs/heads/" + current);
      line("mark :" + mark);
      line("committer Slipway Test <test@slipway.invalid> " + clock++ + " +0000");
      data(message.getBytes(StandardCharsets.UTF_8));
      staged.forEach(
          (path, content) -> {
            line("M 100644 inline " + path);
            data(content);
          });
      stagedLinks.forEach((path, sha) -> line("M 160000 " + sha + " " + path));
      line("");
      staged.clear();
      stagedLinks.clear();
      tips.put(current, mark);
      return this;
    }

    /** Records {@code count} commits, each changing {@code history.txt}. */
    public Builder commits(int count) {
      for (int i = 1; i <= count; i++) {
        file("history.txt", "change " + i + " on " + current + "\n");
        commit("change " + i);
      }
      return this;
    }

    /** Creates {@code branch} at the current branch's last commit and makes it current. */
    public Builder branch(String branch) {
      Integer tip = tips.get(current);
      if (tip == null) {
        throw new IllegalStateException("commit on " + current + " before branching from it");
      }
      line("reset refs/heads/" + branch);
      line("from :" + tip);
      line("");
      tips.put(branch, tip);
      current = branch;
      return this;
    }

    /** Makes an existing branch current, so that the next commits go to it. */
    public Builder checkout(String branch) {
      if (!tips.containsKey(branch)) {
        throw new IllegalStateException("no branch " + branch + "; known: " + tips.keySet());
      }
      current = branch;
      return this;
    }

    /**
     * Writes the repository.
     *
     * @return the bare repository's folder
     */
    public Path build() throws IOException {
      if (!staged.isEmpty() || !stagedLinks.isEmpty()) {
        throw new IllegalStateException("staged files were never committed: " + staged.keySet());
      }
      Files.createDirectories(root);
      Path dir = root.resolve(name);
      git(root, "init", "--quiet", "--bare", "--initial-branch=" + defaultBranch, dir.toString());
      if (stream.size() > 0) {
        line("done");
        git(dir, stream.toByteArray(), "fast-import", "--quiet", "--done");
      }
      return dir;
    }

    private void line(String text) {
      stream.writeBytes((text + "\n").getBytes(StandardCharsets.UTF_8));
    }

    private void data(byte[] bytes) {
      line("data " + bytes.length);
      stream.writeBytes(bytes);
      stream.writeBytes(new byte[] {'\n'});
    }
  }
}

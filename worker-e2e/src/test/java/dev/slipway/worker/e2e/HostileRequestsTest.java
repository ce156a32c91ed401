package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.proto.v1.JobEvent;
import dev.slipway.proto.v1.JobOutcome;
import dev.slipway.proto.v1.JobRequest;
import dev.slipway.proto.v1.JobResponse;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue "Job isolation and limits": malformed and hostile requests against a running worker with
 * the real plugins [git, buildkit, docker-push], over real gRPC on loopback, with a real git
 * server. Every row is sent with RunJob and with StreamJob and must get its exact status, a
 * message naming the field (and, for a limit, the limit and its key), never echo the token or a
 * secret, and leave no trace: the git server saw nothing, no workspace exists, Ping says FREE.
 */
class HostileRequestsTest {
  private static final String TOKEN = "ghp_hostile" + UUID.randomUUID().toString().replace("-", "");
  /** A build secret's value: must never come back in a refusal. */
  private static final String SECRET = "s3cret-" + UUID.randomUUID();
  private static final String URL_PASSWORD = "pw-" + UUID.randomUUID();
  private static final String REGISTRY = "127.0.0.1:5999";

  @TempDir Path dir;
  GitHttpServer gitServer;
  Worker worker;
  ManagedChannel channel;

  @BeforeEach
  void start() throws Exception {
    GitRepos repos = new GitRepos(dir.resolve("repos"));
    repos.repository("app.git")
        // No Dockerfile: a request that is wrongly admitted clones, then ends in the build stage
        // before any engine or registry is involved.
        .file("README.md", "hello\n")
        .commit("first")
        .build();
    gitServer = GitHttpServer.builder(repos.root()).credentials("x-access-token", TOKEN).start();
    Path buildScript = Path.of("..").toAbsolutePath().normalize().resolve("scripts/build.sh");
    worker = TestWorkers.start(dir, "worker.pipeline = [git, buildkit, docker-push]\n"
        + "worker.stages.git.allowed-schemes = [http]\n"
        + "worker.stages.buildkit.network = none\n"
        + "worker.stages.buildkit.script = \"" + buildScript + "\"\n"
        + "worker.stages.docker-push.registry = \"" + REGISTRY + "\"\n"
        + "worker.stages.docker-push.retry.max-attempts = 1\n");
    channel = TestWorkers.channel(worker);
  }

  @AfterEach
  void stop() throws Exception {
    TestWorkers.close(worker, channel);
    if (gitServer != null) {
      gitServer.close();
    }
  }

  /** A request the worker admits: every row changes one thing of it. */
  private JobRequest.Builder valid() {
    return JobRequest.newBuilder()
        .setJobId("hostile-1")
        .setRepoUrl(gitServer.url("app.git"))
        .setBranch("main")
        .setGithubToken(TOKEN)
        .setImageName("team/app:1")
        .setDockerfilePath("Dockerfile")
        .setContextDir(".")
        .putBuildArgs("GREETING", "hi")
        .putBuildSecrets("npmrc", SECRET);
  }

  /**
   * One hostile request and its answer.
   *
   * @param what what the row tries
   * @param change what it changes in the valid request
   * @param code the exact status
   * @param message every part the status description must contain
   * @param secrets what the description must not contain
   */
  record Row(String what, UnaryOperator<JobRequest.Builder> change, Status.Code code,
      List<String> message, List<String> secrets) {}

  private static Row invalid(String what, UnaryOperator<JobRequest.Builder> change,
      String... message) {
    return new Row(what, change, Status.Code.INVALID_ARGUMENT, List.of(message), List.of());
  }

  private static Row invalidHiding(String what, List<String> secrets,
      UnaryOperator<JobRequest.Builder> change, String... message) {
    return new Row(what, change, Status.Code.INVALID_ARGUMENT, List.of(message), secrets);
  }

  private static String repeat(char c, int n) {
    return String.valueOf(c).repeat(n);
  }

  /** {@code n} characters, starting with a marker the refusal must not repeat. */
  private static String secretOfLength(String marker, int n) {
    return marker + repeat('z', n - marker.length());
  }

  private static Map<String, String> entries(String prefix, int count, int valueLength) {
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < count; i++) {
      m.put(prefix + i, repeat('v', valueLength));
    }
    return m;
  }

  private List<Row> rows() {
    String base = gitServer.url("");                 // http://127.0.0.1:PORT/
    String hostPort = "127.0.0.1:" + gitServer.port();
    String longSecret = secretOfLength("long-secret-" + UUID.randomUUID(), 8193);
    String nulSecret = "nul-secret-" + UUID.randomUUID();
    String shortToken = "abcdefg";
    String longToken = secretOfLength("ghp_longtoken" + UUID.randomUUID(), 4097);
    String spacedToken = "ghp_spaced token" + UUID.randomUUID();
    String nonAsciiToken = "ghp_t\u00f6ken" + UUID.randomUUID();
    String controlToken = "ghp_ctl\u001b[2J" + UUID.randomUUID();
    List<Row> rows = new ArrayList<>();

    // job_id
    rows.add(invalid("job_id outside the grammar", b -> b.setJobId("job/../../etc"),
        "job_id: 'job/../../etc'", "1-128 letters, digits, '.', '_' or '-'"));
    rows.add(invalid("job_id of 129 characters", b -> b.setJobId(repeat('a', 129)),
        "job_id:", "must be 1-128"));
    rows.add(invalid("job_id starting with '-'", b -> b.setJobId("-rf"),
        "job_id: '-rf'", "starting with a letter or digit"));
    rows.add(invalid("job_id with a NUL", b -> b.setJobId("job\0id"),
        "job_id: 'job?id'", "1-128"));
    // A NUL at either end is as hostile as one inside: it must be refused, not trimmed away.
    rows.add(invalid("job_id with a trailing NUL", b -> b.setJobId("hostile-1\0"),
        "job_id: 'hostile-1?'", "1-128"));

    // repo_url
    rows.add(invalid("repo_url missing", b -> b.setRepoUrl(""), "repo_url is required"));
    rows.add(invalid("repo_url only blanks", b -> b.setRepoUrl("   "), "repo_url is required"));
    rows.add(invalid("repo_url of 2049 characters",
        b -> b.setRepoUrl(base + repeat('a', 2049 - base.length())),
        "repo_url:", "longer than 2048", "worker.limits.repo-url-max-length"));
    rows.add(invalid("repo_url with a control character",
        b -> b.setRepoUrl(base + "app\u0007.git"), "repo_url:", "control characters"));
    rows.add(invalid("repo_url with a line break", b -> b.setRepoUrl(base + "app\n.git"),
        "repo_url:", "control characters"));
    rows.add(invalid("repo_url with a space", b -> b.setRepoUrl(base + "app .git"),
        "repo_url:", "whitespace"));
    rows.add(invalid("repo_url starting with '-'", b -> b.setRepoUrl("--upload-pack=touch"),
        "repo_url:", "must not start with '-'"));
    rows.add(invalid("repo_url file:", b -> b.setRepoUrl("file://" + dir.resolve("repos/app.git")),
        "repo_url:", "file: URLs are refused", "git.invalid-request"));
    rows.add(invalid("repo_url ext::", b -> b.setRepoUrl("ext::sh%20-c%20id"),
        "repo_url:", "ext::", "git.invalid-request"));
    rows.add(invalid("repo_url scp-like", b -> b.setRepoUrl("git@" + hostPort + ":app.git"),
        "repo_url:", "scp-style", "git.invalid-request"));
    rows.add(invalid("repo_url local path", b -> b.setRepoUrl(dir.resolve("repos/app.git").toString()),
        "repo_url:", "local path", "git.invalid-request"));
    rows.add(invalid("repo_url ssh: not allowed", b -> b.setRepoUrl("ssh://" + hostPort + "/app.git"),
        "repo_url:", "scheme 'ssh' is not allowed", "[http]"));
    rows.add(invalid("repo_url https: not allowed here",
        b -> b.setRepoUrl("https://" + hostPort + "/app.git"),
        "repo_url:", "scheme 'https' is not allowed", "[http]"));
    rows.add(invalidHiding("repo_url with credentials", List.of(URL_PASSWORD),
        b -> b.setRepoUrl("http://x-access-token:" + URL_PASSWORD + "@" + hostPort + "/app.git"),
        "repo_url:", "must not contain credentials"));
    rows.add(invalid("repo_url with a user", b -> b.setRepoUrl("http://git@" + hostPort + "/app.git"),
        "repo_url:", "must not contain credentials"));
    // Refused by the git stage or, failing that, by the runtime's normalisation: both say which.
    rows.add(invalid("repo_url with an empty segment", b -> b.setRepoUrl(base + "/app.git"),
        "repo_url", "empty", "segment"));
    rows.add(invalid("repo_url with a '..' segment", b -> b.setRepoUrl(base + "x/../app.git"),
        "repo_url", "'..' segment"));
    rows.add(invalid("repo_url with a '.' segment", b -> b.setRepoUrl(base + "./app.git"),
        "repo_url", "'.'", "segment"));
    rows.add(invalid("repo_url with %2e%2e", b -> b.setRepoUrl(base + "x/%2e%2e/app.git"),
        "repo_url", "'%2e'"));
    rows.add(invalid("repo_url with %2f", b -> b.setRepoUrl(base + "x%2f..%2fapp.git"),
        "repo_url", "'%2f'"));

    // branch
    rows.add(invalid("branch with '..'", b -> b.setBranch("main..evil"),
        "branch:", "must not contain '..'", "git.invalid-request"));
    rows.add(invalid("branch with '@{'", b -> b.setBranch("main@{1}"),
        "branch:", "must not contain '@{'"));
    rows.add(invalid("branch ending in .lock", b -> b.setBranch("feature.lock"),
        "branch:", "'.lock'"));
    rows.add(invalid("branch starting with '-'", b -> b.setBranch("--upload-pack=touch"),
        "branch:", "must not start with '-'"));
    rows.add(invalid("branch with a control character", b -> b.setBranch("main\u001b[31m"),
        "branch:", "control characters"));
    rows.add(invalid("branch of 4097 characters", b -> b.setBranch(repeat('b', 4097)),
        "branch:", "longer than 4096", "worker.limits.string-max-length"));

    // github_token
    rows.add(invalid("github_token of one letter", b -> b.setGithubToken("x"),
        "github_token: shorter than 8 characters (worker.limits.github-token.min-length)"));
    rows.add(invalid("github_token of one common letter: refused, and nothing masked",
        b -> b.setGithubToken("e"),
        "github_token: shorter than 8 characters (worker.limits.github-token.min-length)",
        "would mask ordinary words"));
    rows.add(invalidHiding("github_token of 7 characters", List.of(shortToken),
        b -> b.setGithubToken(shortToken),
        "github_token: shorter than 8", "worker.limits.github-token.min-length"));
    rows.add(invalidHiding("github_token of 4097 characters", List.of(longToken.substring(0, 40)),
        b -> b.setGithubToken(longToken),
        "github_token: longer than 4096", "worker.limits.github-token.max-length"));
    rows.add(invalidHiding("github_token with a space", List.of(spacedToken, "ghp_spaced"),
        b -> b.setGithubToken(spacedToken), "github_token:", "printable ASCII without spaces"));
    rows.add(invalidHiding("github_token not ASCII", List.of(nonAsciiToken, "ghp_t"),
        b -> b.setGithubToken(nonAsciiToken), "github_token:", "printable ASCII"));
    rows.add(invalidHiding("github_token with control characters", List.of(controlToken, "ghp_ctl"),
        b -> b.setGithubToken(controlToken), "github_token:", "printable ASCII"));

    // image_name
    rows.add(invalid("image_name missing", b -> b.setImageName(""), "image_name is required"));
    rows.add(invalid("image_name of 256 characters",
        b -> b.setImageName("team/" + repeat('a', 251)),
        "image_name:", "longer than 255", "worker.limits.image-name-max-length"));
    rows.add(invalid("image_name in upper case", b -> b.setImageName("Team/App:1"),
        "image_name", "lower-case", "build.invalid-request"));
    rows.add(invalid("image_name with a digest",
        b -> b.setImageName("team/app@sha256:" + repeat('a', 64)),
        "image_name", "digest"));
    rows.add(invalid("image_name on another registry host",
        b -> b.setImageName("registry.evil.test/team/app:1"),
        "image_name 'registry.evil.test/team/app:1'", "only to " + REGISTRY,
        "worker.stages.docker-push.registry", "push.registry-not-allowed"));
    rows.add(invalid("image_name on the same host, another port",
        b -> b.setImageName("127.0.0.1:5998/team/app:1"),
        "image_name", "only to " + REGISTRY, "push.registry-not-allowed"));
    rows.add(invalid("image_name with a control character", b -> b.setImageName("team/app\u0000:1"),
        "image_name:", "control characters"));

    // dockerfile_path and context_dir
    rows.add(invalid("dockerfile_path absolute", b -> b.setDockerfilePath("/etc/passwd"),
        "dockerfile_path:", "must be relative to the repository root"));
    rows.add(invalid("dockerfile_path escaping with ../", b -> b.setDockerfilePath("../../etc/passwd"),
        "dockerfile_path", "leads outside the repository"));
    rows.add(invalid("dockerfile_path escaping after normalisation",
        b -> b.setDockerfilePath("docker/../../Dockerfile"),
        "dockerfile_path", "leads outside the repository"));
    rows.add(invalid("dockerfile_path of 4097 characters",
        b -> b.setDockerfilePath(repeat('d', 4097)),
        "dockerfile_path:", "longer than 4096", "worker.limits.path-max-length"));
    rows.add(invalid("dockerfile_path with a NUL", b -> b.setDockerfilePath("Dockerfile\0.txt"),
        "dockerfile_path:", "control characters"));
    rows.add(invalid("context_dir absolute", b -> b.setContextDir("/var/run"),
        "context_dir:", "must be relative to the repository root"));
    rows.add(invalid("context_dir escaping with ../", b -> b.setContextDir("../"),
        "context_dir", "leads outside the repository"));
    rows.add(invalid("context_dir of 4097 characters", b -> b.setContextDir(repeat('c', 4097)),
        "context_dir:", "longer than 4096", "worker.limits.path-max-length"));
    rows.add(invalid("context_dir with a NUL", b -> b.setContextDir("src\0/x"),
        "context_dir:", "control characters"));
    rows.add(invalid("context_dir with a trailing NUL", b -> b.setContextDir("src\0"),
        "context_dir:", "control characters"));

    // build_args
    rows.add(invalid("build_args with 129 entries",
        b -> b.putAllBuildArgs(entries("ARG_", 128, 1)),
        "build_args: 129 entries, more than 128", "worker.limits.build-args.max-entries"));
    rows.add(invalid("build_args key starting with a digit", b -> b.putBuildArgs("1abc", "x"),
        "build_args: '1abc'", "Dockerfile ARG name"));
    rows.add(invalid("build_args key with '-'", b -> b.putBuildArgs("a-b", "x"),
        "build_args: 'a-b'", "Dockerfile ARG name"));
    rows.add(invalid("build_args value of 8193 characters",
        b -> b.putBuildArgs("BIG", repeat('v', 8193)),
        "build_args.BIG:", "longer than 8192", "worker.limits.build-args.max-value-length"));
    rows.add(invalid("build_args over 64 KiB in all",
        b -> b.putAllBuildArgs(entries("ARG_", 9, 8000)),
        "build_args:", "more than 65536", "worker.limits.build-args.max-total-length"));
    rows.add(invalid("build_args value with a NUL", b -> b.putBuildArgs("NUL", "a\0b"),
        "build_args.NUL:", "NUL"));

    // build_secrets
    rows.add(invalidHiding("build_secrets with 129 entries", List.of(SECRET),
        b -> b.putAllBuildSecrets(entries("s", 128, 1)),
        "build_secrets: 129 entries, more than 128", "worker.limits.build-secrets.max-entries"));
    rows.add(invalidHiding("build_secrets key with '/'", List.of(SECRET),
        b -> b.putBuildSecrets("a/b", SECRET), "build_secrets: 'a/b'", "secret id"));
    rows.add(invalidHiding("build_secrets empty key", List.of(SECRET),
        b -> b.putBuildSecrets("", SECRET), "build_secrets: ''", "secret id"));
    rows.add(invalidHiding("build_secrets key '..'", List.of(SECRET),
        b -> b.putBuildSecrets("..", SECRET), "build_secrets: '..'", "secret id"));
    rows.add(invalidHiding("build_secrets value of 8193 characters",
        List.of(longSecret.substring(0, 40), SECRET),
        b -> b.putBuildSecrets("big", longSecret),
        "build_secrets.big:", "longer than 8192", "worker.limits.build-secrets.max-value-length"));
    rows.add(invalidHiding("build_secrets over 64 KiB in all", List.of(SECRET),
        b -> b.putAllBuildSecrets(entries("s", 9, 8000)),
        "build_secrets:", "more than 65536", "worker.limits.build-secrets.max-total-length"));
    rows.add(invalidHiding("build_secrets value with a NUL", List.of(nulSecret, SECRET),
        b -> b.putBuildSecrets("nul", nulSecret + "\0tail"), "build_secrets.nul:", "NUL"));

    // Secrets in the wrong field (a caller's slip): refused, and the secret still never comes
    // back, neither in the status nor in the worker's log line about the refusal.
    rows.add(invalid("the token pasted into job_id", b -> b.setJobId("job/" + TOKEN),
        "job_id:", "1-128"));
    rows.add(invalid("the token pasted into dockerfile_path", b -> b.setDockerfilePath("/" + TOKEN),
        "dockerfile_path:", "must be relative"));
    rows.add(invalid("a build secret's value pasted as a build_args key",
        b -> b.putBuildArgs(SECRET, "x"), "build_args:", "Dockerfile ARG name"));
    rows.add(invalid("a build secret's value pasted into image_name",
        b -> b.setImageName("Team/" + SECRET), "image_name", "lower-case"));

    // the message itself
    rows.add(new Row("a request of 2 MB", b -> b.putBuildArgs("HUGE", repeat('h', 2 * 1024 * 1024)),
        Status.Code.RESOURCE_EXHAUSTED, List.of("exceeds maximum size 1048576"), List.of()));
    return rows;
  }

  @Test
  void everyHostileRequestIsRefusedBeforeAnythingHappens() throws Exception {
    List<Row> rows = rows();
    assertTrue(rows.size() >= 40, "rows: " + rows.size());
    List<String> failures = new ArrayList<>();
    for (Row row : rows) {
      JobRequest request = row.change().apply(valid()).build();
      // What was sent as secrets; a token too short to be told from ordinary words is skipped.
      Set<String> secrets = new LinkedHashSet<>(row.secrets());
      secrets.add(TOKEN);
      secrets.add(SECRET);
      if (request.getGithubToken().length() >= 4) {
        secrets.add(request.getGithubToken());
      }
      secrets.addAll(request.getBuildSecretsMap().values().stream()
          .filter(v -> v.length() >= 4).toList());
      for (boolean streaming : new boolean[] {false, true}) {
        String what = row.what() + (streaming ? " (StreamJob)" : " (RunJob)");
        String problem = check(what, request, streaming, row, secrets);
        if (problem != null) {
          failures.add(problem);
        }
      }
    }
    int gitRequestsOfRows = gitServer.requests().size();

    // The valid request is admitted: the refusals are the hostile fields' doing. The checkout
    // has no Dockerfile, so the job ends in the build stage, before any engine or registry.
    JobResponse admitted = JobServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(2, TimeUnit.MINUTES).runJob(valid().build());
    assertAll(
        () -> assertEquals(List.of(), failures, failures.size() + " of " + (2 * rows.size())
            + " calls (" + rows.size() + " rows, RunJob and StreamJob) were answered wrongly:\n"
            + String.join("\n", failures)),
        () -> {
          assertEquals(JobOutcome.JOB_OUTCOME_FAILED, admitted.getOutcome(), admitted.toString());
          assertEquals("buildkit", admitted.getFailedStage(), admitted.toString());
          assertEquals("build.dockerfile-not-found", admitted.getErrorCode(), admitted.toString());
          assertTrue(gitServer.requests().size() > gitRequestsOfRows, "the valid request was cloned");
          assertEquals(0, TestWorkers.workspaceCount(dir));
          assertEquals(WorkerStatus.WORKER_STATUS_FREE, TestWorkers.ping(channel).getStatus());
        });
  }

  /** One call of one row; what was wrong with the answer, or null. */
  private String check(String what, JobRequest request, boolean streaming, Row row,
      Set<String> secrets) throws Exception {
    List<String> wrong = new ArrayList<>();
    int gitRequestsBefore = gitServer.requests().size();
    var stub = JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    Status status = null;
    try {
      if (streaming) {
        List<JobEvent> events = new ArrayList<>();
        stub.streamJob(request).forEachRemaining(events::add);
        wrong.add("was accepted and ran: " + summary(events.get(events.size() - 1).getResult()));
      } else {
        wrong.add("was accepted and ran: " + summary(stub.runJob(request)));
      }
    } catch (StatusRuntimeException e) {
      status = e.getStatus();
    }
    if (status != null) {
      String description = String.valueOf(status.getDescription());
      if (status.getCode() != row.code()) {
        wrong.add("status " + status.getCode() + ", expected " + row.code());
      }
      for (String part : row.message()) {
        if (!description.contains(part)) {
          wrong.add("message lacks \"" + part + "\"");
        }
      }
      for (String secret : secrets) {
        if (description.contains(secret)) {
          wrong.add("message echoes a secret (" + secret.substring(0, Math.min(12, secret.length()))
              + "...)");
        }
      }
      if (description.chars().anyMatch(c -> c < 0x20 || (c >= 0x7f && c <= 0x9f))) {
        wrong.add("message carries control characters");
      }
      if (!wrong.isEmpty()) {
        String shown = description;
        for (String secret : secrets) {
          shown = shown.replace(secret, "<secret sent>");
        }
        wrong.add("got " + status.getCode() + ": " + printable(shown));
      }
    }
    List<GitHttpServer.Request> seen = gitServer.requests();
    if (seen.size() > gitRequestsBefore) {
      wrong.add("the git server saw " + (seen.size() - gitRequestsBefore) + " request(s), first "
          + seen.get(gitRequestsBefore).method() + " " + seen.get(gitRequestsBefore).uri());
    }
    long workspaces = TestWorkers.workspaceCount(dir);
    if (workspaces != 0) {
      wrong.add(workspaces + " workspace(s) exist");
    }
    WorkerStatus ping = TestWorkers.ping(channel).getStatus();
    if (ping != WorkerStatus.WORKER_STATUS_FREE) {
      wrong.add("Ping says " + ping);
      // Let a job that should never have started end, so that it does not spoil the next row.
      TestWorkers.awaitStatus(channel, WorkerStatus.WORKER_STATUS_FREE,
          java.time.Duration.ofMinutes(2));
    }
    return wrong.isEmpty() ? null : what + ": " + String.join("; ", wrong);
  }

  private static String summary(JobResponse result) {
    return "job " + printable(result.getJobId()) + " " + result.getOutcome() + " in stage "
        + result.getFailedStage() + " (" + result.getErrorCode() + ")";
  }

  private static String printable(String s) {
    String cut = s.length() > 400 ? s.substring(0, 400) + "..." : s;
    StringBuilder b = new StringBuilder();
    cut.chars().forEach(c -> b.append(c < 0x20 || (c >= 0x7f && c <= 0x9f)
        ? String.format("\\u%04x", c) : String.valueOf((char) c)));
    return b.toString();
  }
}

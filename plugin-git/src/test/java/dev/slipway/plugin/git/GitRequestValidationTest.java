package dev.slipway.plugin.git;

import static dev.slipway.plugin.git.GitTestSupport.context;
import static dev.slipway.plugin.git.GitTestSupport.stage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.testkit.GitHttpServer;
import dev.slipway.worker.testkit.GitRepos;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Requests that could hurt the worker are refused before any network or disk work. */
class GitRequestValidationTest {
  @TempDir Path workspace;

  static Stream<Arguments> refusedUrls() {
    return Stream.of(
        Arguments.of("", "is empty"),
        Arguments.of("   ", "is empty"),
        Arguments.of("ftp://example.com/repo.git", "scheme 'ftp' is not allowed; allowed schemes: [https]"),
        Arguments.of("http://example.com/repo.git", "scheme 'http' is not allowed"),
        Arguments.of("ssh://git@example.com/repo.git", "scheme 'ssh' is not allowed"),
        Arguments.of("git://example.com/repo.git", "scheme 'git' is not allowed"),
        Arguments.of("file:///etc/passwd", "file: URLs are refused"),
        Arguments.of("FILE:///srv/repo.git", "file: URLs are refused"),
        Arguments.of("file:/srv/repo.git", "file: URLs are refused"),
        Arguments.of("/srv/git/repo.git", "local path"),
        Arguments.of("../other-job/src", "local path"),
        Arguments.of("repo.git", "local path"),
        Arguments.of("git@github.com:owner/repo.git", "scp-style"),
        Arguments.of("ext::sh -c touch% /tmp/pwned", "'<transport>::' syntax"),
        Arguments.of("ext::ssh -o ProxyCommand=x host", "'<transport>::' syntax"),
        Arguments.of("fd::17", "'<transport>::' syntax"),
        Arguments.of("https::github.com/owner/repo", "'<transport>::' syntax"),
        Arguments.of("-uhttps://example.com/repo.git", "must not start with '-'"),
        Arguments.of("--upload-pack=touch /tmp/pwned", "must not start with '-'"),
        Arguments.of("https://user:pass@github.com/owner/repo.git", "must not contain credentials"),
        Arguments.of("https://ghp_abc@github.com/owner/repo.git", "must not contain credentials"),
        Arguments.of("https://x-access-token:t%40k@github.com/o/r.git", "must not contain credentials"),
        Arguments.of("https://github.com/owner/repo.git?token=abc", "must not have a query"),
        Arguments.of("https://github.com/owner/repo.git#main", "must not have a query"),
        Arguments.of("https://github.com", "has no repository path"),
        Arguments.of("https://github.com/", "has no repository path"),
        Arguments.of("https:///owner/repo.git", "has no valid host"),
        Arguments.of("https://git hub.com/owner/repo.git", "must not contain spaces"),
        Arguments.of("https://github.com/owner/repo.git\n", "control characters"),
        Arguments.of("https://github.com\\@evil.com/repo.git", "backslashes"),
        Arguments.of("https://[::1/repo.git", "is not a valid URL"));
  }

  @ParameterizedTest
  @MethodSource("refusedUrls")
  void refusesUrl(String url, String expected) throws Exception {
    Stage stage = GitTestSupport.referenceStage();

    StageException e =
        assertThrows(
            StageException.class,
            () -> stage.validate(RecordingJobContext.request(url, "", null, "app:1")));

    assertEquals("git.invalid-request", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().startsWith("repo_url: "), e.getMessage());
    assertTrue(e.getMessage().contains(expected), e.getMessage());
  }

  /**
   * Paths that git servers could read as another repository than the one the caller's allow-list
   * was checked against: nginx merges slashes, Go's path.Clean and Python servers resolve dot
   * segments, some servers decode escapes before routing, while JGit sends the path as written.
   * The first three escaped a scope {@code acme/*}.
   */
  static Stream<Arguments> ambiguousPaths() {
    return Stream.of(
        Arguments.of("https://git.example//acme/app/../../evil/x.git", "empty segment ('//')"),
        Arguments.of("https://git.example/acme/..%2fevil%2fx.git", "escape '%2f' in its path (an escaped '/')"),
        Arguments.of("https://git.example/acme/%2e%2e/evil/x.git", "escape '%2e' in its path (an escaped '.')"),
        Arguments.of("https://git.example/acme/app/../../evil/x.git", "a '..' segment"),
        Arguments.of("https://git.example/acme/../evil/x.git", "a '..' segment"),
        Arguments.of("https://git.example/acme/./app.git", "a '.' segment"),
        Arguments.of("https://git.example/acme/app.git/..", "a '..' segment"),
        Arguments.of("https://git.example/acme/..;/evil/x.git", "a '..' segment"),
        Arguments.of("https://git.example/acme//app.git", "empty segment"),
        Arguments.of("https://git.example/acme/app.git//", "empty segment"),
        Arguments.of("https://git.example/acme/%2E%2E/evil/x.git", "escape '%2E'"),
        Arguments.of("https://git.example/acme/..%2Fevil.git", "escape '%2F'"),
        Arguments.of("https://git.example/acme/..%5cevil.git", "escape '%5c' in its path (an escaped backslash)"),
        Arguments.of("https://git.example/acme/%252e%252e/evil.git", "escape '%25'"),
        Arguments.of("https://git.example/acme/app%00.git", "escape '%00' in its path (an escaped control character)"),
        Arguments.of("https://git.example/acme/app%0a.git", "escape '%0a'"),
        Arguments.of("https://git.example/acme/app%7F.git", "escape '%7F'"));
  }

  @ParameterizedTest
  @MethodSource("ambiguousPaths")
  void refusesPathsThatServersReadAsAnotherRepository(String url, String expected) throws Exception {
    Stage stage = GitTestSupport.referenceStage();

    StageException e =
        assertThrows(
            StageException.class,
            () -> stage.validate(RecordingJobContext.request(url, "", null, "app:1")));

    assertEquals("git.invalid-request", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().startsWith("repo_url: has "), e.getMessage());
    assertTrue(e.getMessage().contains(expected), e.getMessage());
    assertTrue(
        e.getMessage().contains("give the repository's own path plainly, e.g. https://github.com/owner/repo.git"),
        e.getMessage());
    assertFalse(e.getMessage().contains("evil"), "the refused URL is echoed: " + e.getMessage());
  }

  @Test
  void refusedUrlIsNeverEchoedSinceItMayHoldASecret() throws Exception {
    StageException e =
        assertThrows(
            StageException.class,
            () ->
                stage("")
                    .validate(
                        RecordingJobContext.request(
                            "https://x:very-secret-password@github.com/o/r.git", "", null, "a")));

    assertFalse(e.getMessage().contains("very-secret-password"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "https://github.com/owner/repo.git",
        "https://github.com/owner/repo",
        "HTTPS://GitHub.com/owner/repo.git",
        "https://github.com:443/owner/repo.git",
        "https://git.example.com/group/sub/repo.git",
        "https://github.com/owner/repo@2.git",
        // Plain paths that every server reads the same way.
        "https://github.com/owner/repo.git/",
        "https://github.com/owner/..repo.git",
        "https://github.com/owner/repo..git",
        "https://github.com/owner/.github",
        "https://github.com/owner/my%20repo.git",
        "https://github.com/owner/a%2Bb.git"
      })
  void acceptsHttpsUrls(String url) throws Exception {
    Stage stage = GitTestSupport.referenceStage();

    stage.validate(RecordingJobContext.request(url, "main", null, "app:1"));
  }

  @Test
  void httpIsAcceptedOnlyWhenConfigured() throws Exception {
    String url = "http://127.0.0.1:8080/repo.git";
    stage("allowed-schemes = [http]").validate(RecordingJobContext.request(url, "", null, "a"));
    stage("allowed-schemes = [https, http]").validate(RecordingJobContext.request(url, "", null, "a"));
    assertThrows(
        StageException.class,
        () -> stage("allowed-schemes = [https]").validate(RecordingJobContext.request(url, "", null, "a")));
  }

  static Stream<Arguments> refusedBranches() {
    return Stream.of(
        Arguments.of("-f", "must not start with '-'"),
        Arguments.of("--upload-pack=evil", "must not start with '-'"),
        Arguments.of("@", "names HEAD"),
        Arguments.of("HEAD", "names HEAD"),
        Arguments.of("a..b", "'..'"),
        Arguments.of("..", "'..'"),
        Arguments.of("a@{1}", "'@{'"),
        Arguments.of("@{-1}", "'@{'"),
        Arguments.of("has space", "spaces"),
        Arguments.of("tab\there", "control characters"),
        Arguments.of("nl\nhere", "control characters"),
        Arguments.of("del\u007fhere", "control characters"),
        Arguments.of("a~1", "~ ^ :"),
        Arguments.of("a^", "~ ^ :"),
        Arguments.of("a:b", "~ ^ :"),
        Arguments.of("what?", "~ ^ :"),
        Arguments.of("star*", "~ ^ :"),
        Arguments.of("br[acket", "~ ^ :"),
        Arguments.of("back\\slash", "~ ^ :"),
        Arguments.of("/leading", "'/'"),
        Arguments.of("trailing/", "'/'"),
        Arguments.of("double//slash", "'//'"),
        Arguments.of("ends.", "must not end with '.'"),
        Arguments.of(".hidden", "start with '.'"),
        Arguments.of("feature/.hidden", "start with '.'"),
        Arguments.of("main.lock", "'.lock'"),
        Arguments.of("feature.lock/x", "'.lock'"));
  }

  @ParameterizedTest
  @MethodSource("refusedBranches")
  void refusesBranch(String branch, String expected) throws Exception {
    StageException e =
        assertThrows(
            StageException.class,
            () ->
                stage("")
                    .validate(
                        RecordingJobContext.request(
                            "http://127.0.0.1:1/repo.git", branch, null, "app:1")));

    assertEquals("git.invalid-request", e.code());
    assertTrue(e.getMessage().startsWith("branch: "), e.getMessage());
    assertTrue(e.getMessage().contains(expected), e.getMessage());
    assertTrue(e.getMessage().contains("such as main or release/1.2"), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {"main", "release/1.2", "feature/JIRA-123_x", "v1.0.0", "a.b", "ünïcödé", "x@y", "a-"})
  void acceptsBranch(String branch) throws Exception {
    stage("").validate(RecordingJobContext.request("http://127.0.0.1:1/repo.git", branch, null, "a"));
  }

  /** Our rules agree with git's own check-ref-format on every name of both lists. */
  @Test
  void branchRulesAgreeWithGitCheckRefFormat(@TempDir Path dir) throws Exception {
    Stream<String> refused = refusedBranches().map(a -> (String) a.get()[0]);
    // No non-ASCII name: the JVM may pass it to git in the C locale's encoding.
    Stream<String> accepted =
        Stream.of("main", "release/1.2", "feature/JIRA-123_x", "v1.0.0", "a.b", "x@y", "a-");
    for (String name : Stream.concat(refused, accepted).toList()) {
      // Names git refuses only as branches, not as refs.
      if (name.startsWith("-") || name.equals("@") || name.equals("HEAD")) {
        continue;
      }
      boolean gitAccepts = gitAccepts(dir, name);
      boolean weAccept = BranchNames.problem(name).isEmpty();
      assertEquals(gitAccepts, weAccept, "git and the stage disagree on '" + name + "'");
    }
  }

  private static boolean gitAccepts(Path dir, String name) {
    try {
      GitRepos.git(dir, "check-ref-format", "refs/heads/" + name);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** A request for {@code ref} and {@code commitSha}, otherwise valid. */
  private static JobRequestView exactRequest(String branch, String ref, String commitSha) {
    return JobRequestView.builder("http://127.0.0.1:1/repo.git", "app:1").jobId("job")
        .branch(branch).commitSha(commitSha).ref(ref).build();
  }

  static Stream<Arguments> refusedRefs() {
    return Stream.of(
        Arguments.of("main", "must be a full ref name starting with 'refs/'"),
        Arguments.of("heads/main", "must be a full ref name starting with 'refs/'"),
        Arguments.of("+refs/heads/main", "must be a full ref name starting with 'refs/'"),
        Arguments.of("-refs/heads/main", "must be a full ref name starting with 'refs/'"),
        Arguments.of("HEAD", "must be a full ref name starting with 'refs/'"),
        Arguments.of("refs/", "'/'"),
        Arguments.of("refs//heads/main", "'//'"),
        Arguments.of("refs/heads/main/", "'/'"),
        Arguments.of("refs/heads/a..b", "'..'"),
        Arguments.of("refs/tags/v1^{}", "~ ^ :"),
        Arguments.of("refs/heads/main~1", "~ ^ :"),
        Arguments.of("refs/pull/42/merge:refs/heads/x", "~ ^ :"),
        Arguments.of("refs/heads/*", "~ ^ :"),
        Arguments.of("refs/heads/what?", "~ ^ :"),
        Arguments.of("refs/heads/br[acket", "~ ^ :"),
        Arguments.of("refs/heads/back\\slash", "~ ^ :"),
        Arguments.of("refs/heads/has space", "spaces"),
        Arguments.of("refs/heads/nl\nhere", "control characters"),
        Arguments.of("refs/heads/a@{1}", "'@{'"),
        Arguments.of("refs/heads/.hidden", "start with '.'"),
        Arguments.of("refs/tags/v1.", "must not end with '.'"),
        Arguments.of("refs/heads/main.lock", "'.lock'"));
  }

  @ParameterizedTest
  @MethodSource("refusedRefs")
  void refusesRef(String ref, String expected) throws Exception {
    StageException e =
        assertThrows(StageException.class, () -> stage("").validate(exactRequest("", ref, "")));

    assertEquals("git.invalid-request", e.code());
    assertEquals(ErrorKind.INVALID_REQUEST, e.kind());
    assertTrue(e.getMessage().startsWith("ref: "), e.getMessage());
    assertTrue(e.getMessage().contains(expected), e.getMessage());
    assertTrue(e.getMessage().contains("such as refs/tags/v1.2, refs/pull/42/merge"), e.getMessage());
  }

  static final List<String> ACCEPTED_REFS =
      List.of(
          "refs/tags/v1",
          "refs/tags/v1.0.0-rc.1",
          "refs/pull/42/merge",
          "refs/pull/42/head",
          "refs/heads/main",
          "refs/heads/release/1.2",
          "refs/merge-requests/7/head",
          "refs/changes/34/1234/5",
          "refs/heads/x@y");

  @Test
  void acceptsRefs() throws Exception {
    for (String ref : ACCEPTED_REFS) {
      stage("").validate(exactRequest("", ref, ""));
    }
  }

  /** Our rules agree with git check-ref-format on every full ref name of both lists. */
  @Test
  void refRulesAgreeWithGitCheckRefFormat(@TempDir Path dir) throws Exception {
    Stream<String> refused = refusedRefs().map(a -> (String) a.get()[0]);
    for (String name : Stream.concat(refused, ACCEPTED_REFS.stream()).toList()) {
      if (!name.startsWith("refs/")) {
        continue; // refused for not being under refs/, which check-ref-format does not require
      }
      boolean gitAccepts;
      try {
        GitRepos.git(dir, "check-ref-format", name);
        gitAccepts = true;
      } catch (IOException e) {
        gitAccepts = false;
      }
      assertEquals(gitAccepts, BranchNames.refProblem(name).isEmpty(),
          "git and the stage disagree on '" + name + "'");
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "abc",
        "0123456789abcdef0123456789abcdef0123456",
        "0123456789abcdef0123456789abcdef012345678",
        "g123456789abcdef0123456789abcdef01234567",
        " 0123456789abcdef0123456789abcdef0123456",
        "HEAD"
      })
  void refusesCommitShaThatIsNotAFullId(String sha) throws Exception {
    StageException e =
        assertThrows(StageException.class, () -> stage("").validate(exactRequest("", "", sha)));

    assertEquals("git.invalid-request", e.code());
    assertTrue(e.getMessage().startsWith("commit_sha: must be a full commit id, 40 hex digits"),
        e.getMessage());
  }

  @Test
  void acceptsCommitShaInEitherCase() throws Exception {
    stage("").validate(exactRequest("", "", "0123456789abcdef0123456789abcdef01234567"));
    stage("").validate(exactRequest("main", "", "0123456789ABCDEF0123456789ABCDEF01234567"));
    stage("").validate(
        exactRequest("", "refs/pull/1/merge", "0123456789abcdef0123456789abcdef01234567"));
  }

  @Test
  void refusesBranchTogetherWithRef() throws Exception {
    StageException e =
        assertThrows(
            StageException.class,
            () -> stage("").validate(exactRequest("main", "refs/tags/v1", "")));

    assertEquals("git.invalid-request", e.code());
    assertTrue(e.getMessage().contains("branch and ref: give one of them, not both"), e.getMessage());
  }

  /** execute() checks the ref again and refuses before any request or any file. */
  @Test
  void executeRefusesABadRefBeforeAnyNetworkOrDiskWork(@TempDir Path repoRoot) throws Exception {
    GitRepos repos = new GitRepos(repoRoot);
    repos.repository("app.git").file("a", "a").commit("a").build();
    try (GitHttpServer server =
        GitHttpServer.builder(repoRoot).credentials("x-access-token", "t").start()) {
      JobRequestView request =
          JobRequestView.builder(server.url("app.git"), "app:1").jobId("job")
              .ref("refs/tags/v1:refs/heads/main").build();
      RecordingJobContext ctx = new RecordingJobContext(request, workspace);

      StageException e = assertThrows(StageException.class, () -> stage().execute(ctx));

      assertEquals("git.invalid-request", e.code());
      assertTrue(server.requests().isEmpty(), server.requests()::toString);
      try (Stream<Path> files = Files.list(workspace)) {
        assertEquals(0, files.count());
      }
    }
  }

  @Test
  void reportsEveryProblemAtOnce() throws Exception {
    StageException e =
        assertThrows(
            StageException.class,
            () -> stage("").validate(RecordingJobContext.request("file:///etc", "a..b", null, "a")));

    assertTrue(e.getMessage().startsWith("repo_url: file: URLs are refused"), e.getMessage());
    assertTrue(e.getMessage().contains("; branch: must not contain '..'"), e.getMessage());
  }

  /** execute() checks again and refuses before any request or any file. */
  @Test
  void executeRefusesBeforeAnyNetworkOrDiskWork(@TempDir Path repoRoot) throws Exception {
    GitRepos repos = new GitRepos(repoRoot);
    repos.repository("app.git").file("a", "a").commit("a").build();
    try (GitHttpServer server =
        GitHttpServer.builder(repoRoot).credentials("x-access-token", "t").start()) {
      RecordingJobContext ctx = context(workspace, server.url("app.git"), "bad..branch", "t");

      StageException e = assertThrows(StageException.class, () -> stage().execute(ctx));

      assertEquals("git.invalid-request", e.code());
      assertTrue(server.requests().isEmpty(), server.requests()::toString);
      try (Stream<Path> files = Files.list(workspace)) {
        assertEquals(0, files.count());
      }
    }
  }
}

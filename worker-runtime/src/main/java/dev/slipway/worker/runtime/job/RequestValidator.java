package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.runtime.config.Limits;
import dev.slipway.worker.runtime.errors.RejectedJobException;
import dev.slipway.worker.runtime.errors.RejectedJobException.Reason;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * The runtime's own checks of a request, made before any stage sees it: the grammar of ids and
 * keys, no control characters, and the bounds of {@code worker.limits}. Stage-specific rules (URL
 * schemes, ref names, image references) belong to the stages' {@code validate}. Every refusal
 * names the field and the limit, and never echoes a secret.
 */
final class RequestValidator {
  private static final Pattern JOB_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  /** A Dockerfile ARG name. */
  private static final Pattern BUILD_ARG = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,127}");
  /** A BuildKit secret id, as RUN --mount=type=secret,id=... takes it. */
  private static final Pattern SECRET_ID = Pattern.compile("[A-Za-z0-9_.-]{1,128}");
  private static final Pattern COMMIT = Pattern.compile("[0-9a-fA-F]{40}");
  /** A tag as the distribution spec allows it. */
  private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  /** Most extra tags one job may push; a push stage may allow fewer. */
  static final int MAX_EXTRA_TAGS = 16;

  private final Limits limits;

  RequestValidator(Limits limits) {
    this.limits = limits;
  }

  void validate(JobRequestView request) throws RejectedJobException {
    if (!JOB_ID.matcher(request.jobId()).matches()) {
      throw invalid("job_id: '" + printable(request.jobId()) + "' must be 1-128 letters, digits,"
          + " '.', '_' or '-', starting with a letter or digit; leave it empty to get one");
    }
    if (request.repoUrl().isBlank()) {
      throw invalid("repo_url is required: the git repository to build,"
          + " e.g. https://github.com/acme/app.git");
    }
    plain("repo_url", request.repoUrl(), limits.repoUrlMaxLength(),
        "worker.limits.repo-url-max-length");
    plain("branch", request.branch(), limits.stringMaxLength(),
        "worker.limits.string-max-length");
    plain("ref", request.ref(), limits.stringMaxLength(), "worker.limits.string-max-length");
    if (!request.ref().isEmpty() && !request.branch().isEmpty()) {
      throw invalid("ref and branch are exclusive: give the branch as branch (main), or any ref"
          + " as ref (refs/heads/main, refs/tags/v1, refs/pull/42/merge), not both");
    }
    if (!request.commitSha().isEmpty() && !COMMIT.matcher(request.commitSha()).matches()) {
      throw invalid("commit_sha: '" + printable(request.commitSha()) + "' must be a full commit"
          + " id, 40 hexadecimal digits; leave it empty to build the tip of branch or ref");
    }
    if (request.imageName().isBlank()) {
      throw invalid("image_name is required: the image to build, repository[:tag],"
          + " e.g. acme/app:1.4");
    }
    plain("image_name", request.imageName(), limits.imageNameMaxLength(),
        "worker.limits.image-name-max-length");
    extraTags(request.extraTags());
    relative("dockerfile_path", request.dockerfilePath());
    relative("context_dir", request.contextDir());
    if (request.token().isPresent()) {
      token(request.token().get().reveal());
    }
    map("build_args", request.buildArgs(), s -> s, limits.buildArgs(),
        "worker.limits.build-args", BUILD_ARG,
        "a Dockerfile ARG name: letters, digits and '_', not starting with a digit", false);
    map("build_secrets", request.buildSecrets(), Secret::reveal, limits.buildSecrets(),
        "worker.limits.build-secrets", SECRET_ID,
        "a BuildKit secret id: 1-128 letters, digits, '_', '.' or '-'", true);
  }

  /** Printable ASCII without spaces, within the length bounds; never echoed. */
  private static void extraTags(java.util.List<String> tags) throws RejectedJobException {
    if (tags.size() > MAX_EXTRA_TAGS) {
      throw invalid("extra_tags: " + tags.size() + " tags; at most " + MAX_EXTRA_TAGS
          + " extra tags are allowed per job");
    }
    java.util.Set<String> seen = new java.util.HashSet<>();
    for (String tag : tags) {
      if (!TAG.matcher(tag).matches()) {
        throw invalid("extra_tags: '" + printable(tag) + "' is not a tag: 1-128 letters, digits,"
            + " '_', '.' or '-', not starting with '.' or '-' (e.g. main, v1.4, 3f2a9c1)");
      }
      if (!seen.add(tag)) {
        throw invalid("extra_tags: '" + tag + "' is given twice; give each tag once");
      }
    }
  }

  private void token(String token) throws RejectedJobException {
    if (token.length() > limits.tokenMaxLength()) {
      throw invalid("github_token: longer than " + limits.tokenMaxLength()
          + " characters (worker.limits.github-token.max-length)");
    }
    if (token.length() < limits.tokenMinLength()) {
      throw invalid("github_token: shorter than " + limits.tokenMinLength() + " characters"
          + " (worker.limits.github-token.min-length); a real token is longer, and a short one"
          + " would mask ordinary words in every log line of the job");
    }
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        throw invalid("github_token: must be printable ASCII without spaces (character "
            + (i + 1) + " is not)");
      }
    }
  }

  private <V> void map(String field, Map<String, V> entries, Function<V, String> value,
      Limits.MapBounds bounds, String key, Pattern grammar, String grammarText, boolean secret)
      throws RejectedJobException {
    if (entries.size() > bounds.maxEntries()) {
      throw invalid(field + ": " + entries.size() + " entries, more than "
          + bounds.maxEntries() + " (" + key + ".max-entries)");
    }
    long total = 0;
    for (Map.Entry<String, V> entry : entries.entrySet()) {
      String name = entry.getKey();
      if (!grammar.matcher(name).matches()) {
        throw invalid(field + ": '" + printable(name) + "' is not " + grammarText);
      }
      String v = value.apply(entry.getValue());
      if (v.length() > bounds.maxValueLength()) {
        throw invalid(field + "." + name + ": the value is longer than "
            + bounds.maxValueLength() + " characters (" + key + ".max-value-length)");
      }
      for (int i = 0; i < v.length(); i++) {
        char c = v.charAt(i);
        // A secret may be a PEM key or a file's text: line breaks and tabs are its own.
        boolean allowed = c == '\t' || (secret && (c == '\n' || c == '\r'));
        if (isControl(c) && !allowed) {
          throw invalid(field + "." + name + ": the value must not contain NUL or other"
              + " control characters" + (secret ? " (line breaks and tabs are allowed)" : ""));
        }
      }
      total += name.length() + v.length();
    }
    if (total > bounds.maxTotalLength()) {
      throw invalid(field + ": " + total + " characters of keys and values, more than "
          + bounds.maxTotalLength() + " (" + key + ".max-total-length)");
    }
  }

  private static void plain(String field, String value, int max, String key)
      throws RejectedJobException {
    if (value.length() > max) {
      throw invalid(field + ": longer than " + max + " characters (" + key + ")");
    }
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (isControl(c) || Character.isWhitespace(c)) {
        throw invalid(field + ": must not contain whitespace or control characters");
      }
    }
    if (value.startsWith("-")) {
      throw invalid(field + ": must not start with '-'");
    }
  }

  private void relative(String field, String value) throws RejectedJobException {
    plain(field, value, limits.pathMaxLength(), "worker.limits.path-max-length");
    if (value.startsWith("/")) {
      throw invalid(field + ": '" + printable(value) + "' must be relative to the repository"
          + " root, e.g. docker/Dockerfile");
    }
  }

  /** C0, DEL and C1 controls: what a terminal or a parser could act on. */
  private static boolean isControl(char c) {
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
  }

  private static String printable(String s) {
    String cut = s.length() > 64 ? s.substring(0, 64) + "..." : s;
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < cut.length(); i++) {
      char c = cut.charAt(i);
      b.append(isControl(c) ? '?' : c);
    }
    return b.toString();
  }

  private static RejectedJobException invalid(String message) {
    return new RejectedJobException(Reason.INVALID_REQUEST, message);
  }
}

package dev.slipway.worker.api;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A job's request as stages see it: the fields of the gRPC {@code JobRequest} with defaults
 * applied ({@code Dockerfile}, {@code .}) and the secrets wrapped so that they never print.
 *
 * <p>A final class of accessors, not a record, so that it can grow: a field the contract gains
 * becomes one more accessor here, which plugins compiled against an older {@code worker-api} never
 * call and never notice. (The 0.1 and 0.2 versions were records; their accessors keep their names
 * and types, and their constructors stay, so such plugins run unchanged.) The runtime builds it
 * with {@link #builder}; stages only read it.
 */
public final class JobRequestView {
  private final String jobId;
  private final String repoUrl;
  private final String branch;
  private final Optional<Secret> token;
  private final String imageName;
  private final String dockerfilePath;
  private final String contextDir;
  private final Map<String, String> buildArgs;
  private final Map<String, Secret> buildSecrets;
  private final String commitSha;
  private final String ref;
  private final List<String> extraTags;

  private JobRequestView(Builder b) {
    this.jobId = Objects.requireNonNull(b.jobId, "jobId");
    this.repoUrl = Objects.requireNonNull(b.repoUrl, "repoUrl");
    this.branch = Objects.requireNonNull(b.branch, "branch");
    this.token = Objects.requireNonNull(b.token, "token");
    this.imageName = Objects.requireNonNull(b.imageName, "imageName");
    this.dockerfilePath = Objects.requireNonNull(b.dockerfilePath, "dockerfilePath");
    this.contextDir = Objects.requireNonNull(b.contextDir, "contextDir");
    // Copies that keep the caller's order: builds and logs must not depend on hash order.
    this.buildArgs = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(b.buildArgs));
    this.buildSecrets = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(b.buildSecrets));
    this.commitSha = Objects.requireNonNull(b.commitSha, "commitSha");
    this.ref = Objects.requireNonNull(b.ref, "ref");
    this.extraTags = List.copyOf(b.extraTags);
  }

  /**
   * A request without an exact commit or ref: the constructor of worker-api 0.2.
   *
   * @deprecated use {@link #builder}; kept so that code built against 0.2 links
   */
  @Deprecated
  public JobRequestView(String jobId, String repoUrl, String branch, Optional<Secret> token,
      String imageName, String dockerfilePath, String contextDir, Map<String, String> buildArgs,
      Map<String, Secret> buildSecrets) {
    this(builder(repoUrl, imageName).jobId(jobId).branch(branch).token(token)
        .dockerfilePath(dockerfilePath).contextDir(contextDir).buildArgs(buildArgs)
        .buildSecrets(buildSecrets));
  }

  /**
   * A request without build secrets: the constructor of worker-api 0.1.
   *
   * @deprecated use {@link #builder}; kept so that code built against 0.1 links
   */
  @Deprecated
  public JobRequestView(String jobId, String repoUrl, String branch, Optional<Secret> token,
      String imageName, String dockerfilePath, String contextDir, Map<String, String> buildArgs) {
    this(jobId, repoUrl, branch, token, imageName, dockerfilePath, contextDir, buildArgs,
        Map.of());
  }

  /**
   * A request for {@code repoUrl} and {@code imageName} with every other field at its default:
   * no job id yet, the remote's default branch, no token, {@code Dockerfile} in {@code .}.
   */
  public static Builder builder(String repoUrl, String imageName) {
    return new Builder(repoUrl, imageName);
  }

  /** A builder holding every field of this request, to change some of them. */
  public Builder toBuilder() {
    return new Builder(repoUrl, imageName).jobId(jobId).branch(branch).token(token)
        .dockerfilePath(dockerfilePath).contextDir(contextDir).buildArgs(buildArgs)
        .buildSecrets(buildSecrets).commitSha(commitSha).ref(ref).extraTags(extraTags);
  }

  /** The job's id. */
  public String jobId() {
    return jobId;
  }

  /** The repository to clone. */
  public String repoUrl() {
    return repoUrl;
  }

  /** The branch to check out; empty for the remote's default branch (or when {@link #ref} is set). */
  public String branch() {
    return branch;
  }

  /** The token for a private repository, if any. */
  public Optional<Secret> token() {
    return token;
  }

  /** The image to build, {@code repository[:tag]}. */
  public String imageName() {
    return imageName;
  }

  /** The Dockerfile, relative to the repository root. */
  public String dockerfilePath() {
    return dockerfilePath;
  }

  /** The build context, relative to the repository root. */
  public String contextDir() {
    return contextDir;
  }

  /**
   * Build arguments, in the caller's order; visible in the build's process list and the image's
   * history, so never secrets.
   */
  public Map<String, String> buildArgs() {
    return buildArgs;
  }

  /**
   * BuildKit secrets by id, for {@code RUN --mount=type=secret,id=<id>}; their values are masked
   * in every log line and event of the job.
   *
   * @since 0.2
   */
  public Map<String, Secret> buildSecrets() {
    return buildSecrets;
  }

  /**
   * The exact commit to build (40 hex digits), or empty for the tip of {@link #branch} / {@link
   * #ref}.
   *
   * @since 0.3
   */
  public String commitSha() {
    return commitSha;
  }

  /**
   * Any ref to build ({@code refs/tags/v1}, {@code refs/pull/42/merge}), or empty; never set
   * together with {@link #branch}.
   *
   * @since 0.3
   */
  public String ref() {
    return ref;
  }

  /**
   * More tags to push for the same image, besides the tag of {@link #imageName} (for example
   * {@code main} next to {@code app:3f2a...}); each already checked against the tag grammar.
   *
   * @since 0.3
   */
  public List<String> extraTags() {
    return extraTags;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof JobRequestView v && jobId.equals(v.jobId) && repoUrl.equals(v.repoUrl)
        && branch.equals(v.branch) && token.equals(v.token) && imageName.equals(v.imageName)
        && dockerfilePath.equals(v.dockerfilePath) && contextDir.equals(v.contextDir)
        && buildArgs.equals(v.buildArgs) && buildSecrets.equals(v.buildSecrets)
        && commitSha.equals(v.commitSha) && ref.equals(v.ref) && extraTags.equals(v.extraTags);
  }

  @Override
  public int hashCode() {
    return Objects.hash(jobId, repoUrl, branch, imageName, commitSha, ref);
  }

  /** Names the job and what it builds; never a token's or a secret's value. */
  @Override
  public String toString() {
    return "JobRequestView[jobId=" + jobId + ", repoUrl=" + repoUrl + ", branch=" + branch
        + ", ref=" + ref + ", commitSha=" + commitSha + ", imageName=" + imageName
        + ", extraTags=" + extraTags + ", dockerfilePath=" + dockerfilePath + ", contextDir="
        + contextDir + ", buildArgs=" + buildArgs.keySet() + ", buildSecrets="
        + buildSecrets.keySet() + ", token=" + (token.isPresent() ? "***" : "none") + "]";
  }

  /** Builds a {@link JobRequestView}; every setter replaces what was set before. */
  public static final class Builder {
    private String jobId = "";
    private String repoUrl;
    private String branch = "";
    private Optional<Secret> token = Optional.empty();
    private String imageName;
    private String dockerfilePath = "Dockerfile";
    private String contextDir = ".";
    private Map<String, String> buildArgs = Map.of();
    private Map<String, Secret> buildSecrets = Map.of();
    private String commitSha = "";
    private String ref = "";
    private List<String> extraTags = List.of();

    private Builder(String repoUrl, String imageName) {
      this.repoUrl = repoUrl;
      this.imageName = imageName;
    }

    public Builder jobId(String jobId) {
      this.jobId = jobId;
      return this;
    }

    public Builder repoUrl(String repoUrl) {
      this.repoUrl = repoUrl;
      return this;
    }

    public Builder branch(String branch) {
      this.branch = branch;
      return this;
    }

    public Builder token(Optional<Secret> token) {
      this.token = token;
      return this;
    }

    public Builder imageName(String imageName) {
      this.imageName = imageName;
      return this;
    }

    public Builder dockerfilePath(String dockerfilePath) {
      this.dockerfilePath = dockerfilePath;
      return this;
    }

    public Builder contextDir(String contextDir) {
      this.contextDir = contextDir;
      return this;
    }

    public Builder buildArgs(Map<String, String> buildArgs) {
      this.buildArgs = Objects.requireNonNull(buildArgs, "buildArgs");
      return this;
    }

    public Builder buildSecrets(Map<String, Secret> buildSecrets) {
      this.buildSecrets = Objects.requireNonNull(buildSecrets, "buildSecrets");
      return this;
    }

    public Builder commitSha(String commitSha) {
      this.commitSha = commitSha;
      return this;
    }

    public Builder ref(String ref) {
      this.ref = ref;
      return this;
    }

    public Builder extraTags(List<String> extraTags) {
      this.extraTags = new ArrayList<>(Objects.requireNonNull(extraTags, "extraTags"));
      return this;
    }

    public JobRequestView build() {
      return new JobRequestView(this);
    }
  }
}

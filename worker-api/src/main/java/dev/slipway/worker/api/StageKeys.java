package dev.slipway.worker.api;

import java.nio.file.Path;

/** The keys through which the bundled stages hand work on; any plugin may use them. */
public final class StageKeys {
  private StageKeys() {}

  /** The root of the checked-out source tree, inside the job's workspace. */
  public static final StageKey<Path> SOURCE_DIR = StageKey.of("source-dir", Path.class);

  /** The full sha of the checked-out commit; it becomes {@code JobResponse.commit_sha}. */
  public static final StageKey<String> COMMIT_SHA = StageKey.of("commit-sha", String.class);

  /**
   * When the checked-out commit was made (its committer time). A build stage uses it for the
   * image's creation label, so that the same commit builds the same image, byte for byte, and a
   * repeat job pushes nothing new.
   *
   * @since 0.3
   */
  public static final StageKey<java.time.Instant> COMMIT_TIME =
      StageKey.of("commit-time", java.time.Instant.class);

  /** The reference of the image built into the local engine, e.g. {@code app:1.2}. */
  public static final StageKey<String> LOCAL_IMAGE = StageKey.of("local-image", String.class);

  /** Where to push, and with which credentials; masked everywhere. */
  public static final StageKey<RegistryCredentials> REGISTRY_CREDENTIALS =
      StageKey.of("registry-credentials", RegistryCredentials.class);

  /**
   * The credentials of {@link #REGISTRY_CREDENTIALS} that the registry refused, published by the
   * push stage, so that the auth stage can forget them in its {@link Stage#cleanup} (a cached
   * token) and the next job asks afresh.
   */
  public static final StageKey<RegistryCredentials> REJECTED_CREDENTIALS =
      StageKey.of("rejected-credentials", RegistryCredentials.class);

  /** The full reference the image was pushed to; it becomes {@code JobResponse.image_uri}. */
  public static final StageKey<String> IMAGE_URI = StageKey.of("image-uri", String.class);

  /**
   * The references of the extra tags the image was pushed under, one per {@link
   * JobRequestView#extraTags()}, in that order; they become {@code JobResponse.extra_image_uris}.
   *
   * @since 0.3
   */
  @SuppressWarnings({"unchecked", "rawtypes"})
  public static final StageKey<java.util.List<String>> EXTRA_IMAGE_URIS =
      (StageKey) StageKey.of("extra-image-uris", java.util.List.class);

  /** The pushed manifest's digest, {@code sha256:...}; it becomes {@code JobResponse.image_digest}. */
  public static final StageKey<String> IMAGE_DIGEST = StageKey.of("image-digest", String.class);
}

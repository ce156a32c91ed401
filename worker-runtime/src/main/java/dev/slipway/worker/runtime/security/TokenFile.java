package dev.slipway.worker.runtime.security;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A caller's bearer token, kept in a file that holds one token and re-read when it changes, so a
 * token can be rotated (or revoked, by emptying or removing the file) without a restart. Only the
 * token's SHA-256 is held; comparisons take the same time whatever the presented token is.
 */
final class TokenFile {
  private static final Logger LOG = LoggerFactory.getLogger(TokenFile.class);
  /** Shorter tokens are guessable; a start-up error. */
  static final int MIN_LENGTH = dev.slipway.worker.runtime.config.SecuritySettings.MIN_TOKEN_LENGTH;
  /** How long a read is trusted before the file's time stamp and size are looked at again. */
  private static final long CHECK_NANOS = 1_000_000_000L;

  private final Path file;
  private byte[] digest;
  private FileTime modified;
  private long size = -1;
  private long checkedAt;

  /** Reads the file; throws with a message for the operator when it is unusable. */
  TokenFile(Path file) throws IOException {
    this.file = file;
    String token = read(file);
    if (token.length() < MIN_LENGTH) {
      throw new IOException("token-file " + file + " holds " + (token.isEmpty() ? "no token"
          : "a token shorter than " + MIN_LENGTH + " characters") + "; put one random token of"
          + " at least " + MIN_LENGTH + " characters in it (e.g. openssl rand -hex 32)");
    }
    this.digest = sha256(token);
    this.modified = Files.getLastModifiedTime(file);
    this.size = Files.size(file);
    this.checkedAt = System.nanoTime();
  }

  /** Whether {@code presentedDigest} (a SHA-256) is this file's current token. */
  synchronized boolean matches(byte[] presentedDigest) {
    refreshIfChanged();
    return digest != null && MessageDigest.isEqual(digest, presentedDigest);
  }

  private void refreshIfChanged() {
    long now = System.nanoTime();
    if (now - checkedAt < CHECK_NANOS) {
      return;
    }
    checkedAt = now;
    try {
      FileTime m = Files.getLastModifiedTime(file);
      long s = Files.size(file);
      if (Objects.equals(m, modified) && s == size) {
        return;
      }
      modified = m;
      size = s;
      String token = read(file);
      if (token.length() < MIN_LENGTH) {
        digest = null;
        LOG.warn("token-file {} now holds no usable token; its caller is refused until it does",
            file);
      } else {
        digest = sha256(token);
        LOG.info("token-file {} changed; its caller's new token is in use", file);
      }
    } catch (IOException e) {
      // Fail closed: a token file that went away revokes the token.
      if (digest != null || modified != null) {
        LOG.warn("token-file {} cannot be read ({}); its caller is refused until it can", file,
            e.getClass().getSimpleName());
      }
      digest = null;
      modified = null;
      size = -1;
    }
  }

  private static String read(Path file) throws IOException {
    return Files.readString(file, StandardCharsets.UTF_8).strip();
  }

  static byte[] sha256(String token) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }
}

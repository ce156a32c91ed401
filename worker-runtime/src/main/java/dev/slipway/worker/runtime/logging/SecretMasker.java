package dev.slipway.worker.runtime.logging;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Replaces known secrets in text with {@code ****}: each secret as it is, URL-encoded, and
 * base64-encoded at each of the three byte alignments, so that a token inside a longer base64 blob
 * (an HTTP basic-auth header, a docker auth config) is masked too. Thread-safe.
 */
public final class SecretMasker {
  public static final String MASK = "****";
  /** Fragments shorter than this would mask ordinary text; the plain secret is always masked. */
  private static final int MIN_ENCODED_FRAGMENT = 6;

  private final Set<String> secrets = new LinkedHashSet<>();
  private volatile List<String> forms = List.of();

  /** Adds a secret; blank values are ignored. */
  public synchronized void add(String secret) {
    if (secret == null || secret.isBlank() || !secrets.add(secret)) {
      return;
    }
    Set<String> all = new LinkedHashSet<>(forms);
    all.addAll(formsOf(secret));
    List<String> sorted = new ArrayList<>(all);
    // Longest first, so a form that contains another is replaced whole.
    sorted.sort(Comparator.comparingInt(String::length).reversed());
    forms = List.copyOf(sorted);
  }

  public boolean isEmpty() {
    return forms.isEmpty();
  }

  /** The text with every known secret form replaced by {@link #MASK}. */
  public String mask(String text) {
    if (text == null || text.isEmpty()) {
      return text;
    }
    String masked = text;
    for (String form : forms) {
      if (masked.contains(form)) {
        masked = masked.replace(form, MASK);
      }
    }
    return masked;
  }

  /** The forms of a secret that are masked. */
  static Set<String> formsOf(String secret) {
    Set<String> forms = new LinkedHashSet<>();
    forms.add(secret);
    String urlEncoded = URLEncoder.encode(secret, StandardCharsets.UTF_8);
    forms.add(urlEncoded);
    forms.add(urlEncoded.replace("+", "%20"));
    byte[] bytes = secret.getBytes(StandardCharsets.UTF_8);
    for (int offset = 0; offset < 3; offset++) {
      for (Base64.Encoder encoder :
          List.of(Base64.getEncoder(), Base64.getUrlEncoder())) {
        String fragment = base64Fragment(encoder, bytes, offset);
        if (fragment.length() >= MIN_ENCODED_FRAGMENT) {
          forms.add(fragment);
        }
      }
    }
    return forms;
  }

  /**
   * The part of the base64 text that depends on the secret's bytes alone when the secret starts
   * {@code offset} bytes into the encoded data: characters mixed with the bytes before or after it
   * are dropped.
   */
  private static String base64Fragment(Base64.Encoder encoder, byte[] secret, int offset) {
    byte[] padded = new byte[offset + secret.length];
    System.arraycopy(secret, 0, padded, offset, secret.length);
    String encoded = encoder.withoutPadding().encodeToString(padded);
    int skipStart = offset == 0 ? 0 : offset + 1;
    int skipEnd = (offset + secret.length) % 3 == 0 ? 0 : 1;
    if (encoded.length() - skipEnd <= skipStart) {
      return "";
    }
    return encoded.substring(skipStart, encoded.length() - skipEnd);
  }
}

package dev.slipway.worker.runtime.logging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class SecretMaskerTest {
  @Test
  void masksThePlainSecretEverywhereInALine() {
    SecretMasker masker = new SecretMasker();
    masker.add("tok3n-value");
    assertEquals("a **** b ****", masker.mask("a tok3n-value b tok3n-value"));
  }

  /** A secret inside a longer base64 text is masked whatever its byte offset in it. */
  @ParameterizedTest
  @ValueSource(strings = {"", "u:", "ab:", "user:", "x-access-token:"})
  void masksTheSecretInsideLongerBase64(String prefix) {
    SecretMasker masker = new SecretMasker();
    String secret = "p4ssw0rd-of-some-length";
    masker.add(secret);
    String header = Base64.getEncoder()
        .encodeToString((prefix + secret + "\n").getBytes(StandardCharsets.UTF_8));
    String masked = masker.mask("Authorization: Basic " + header);
    assertFalse(masked.contains(header), masked);
    // What is left of the header is at most the characters mixed with the prefix or suffix.
    String rest = masked.replace("Authorization: Basic ", "").replace("****", "");
    assertFalse(rest.length() > prefix.length() * 4 / 3 + 8, masked);
  }

  @Test
  void masksUrlEncodedForms() {
    SecretMasker masker = new SecretMasker();
    masker.add("a b/c+d");
    assertEquals("x=**** y=****", masker.mask("x=a+b%2Fc%2Bd y=a%20b%2Fc%2Bd"));
  }

  @Test
  void blankSecretsAreIgnored() {
    SecretMasker masker = new SecretMasker();
    masker.add("  ");
    masker.add(null);
    assertEquals("text", masker.mask("text"));
  }
}

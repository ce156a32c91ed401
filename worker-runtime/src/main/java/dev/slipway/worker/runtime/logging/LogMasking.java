package dev.slipway.worker.runtime.logging;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The maskers whose secrets every log line of the worker is cleaned of: one per running job, plus
 * one for secrets from configuration. The logging layout consults it for every line, so even a
 * plugin's own SLF4J logging cannot print a job's token.
 */
public final class LogMasking {
  private static final Set<SecretMasker> ACTIVE = ConcurrentHashMap.newKeySet();
  private static final SecretMasker CONFIGURATION = new SecretMasker();

  static {
    ACTIVE.add(CONFIGURATION);
  }

  private LogMasking() {}

  public static void register(SecretMasker masker) {
    ACTIVE.add(masker);
  }

  public static void unregister(SecretMasker masker) {
    if (masker != CONFIGURATION) {
      ACTIVE.remove(masker);
    }
  }

  /** Masks a secret that lives as long as the worker, such as a password from configuration. */
  public static void addWorkerSecret(String secret) {
    CONFIGURATION.add(secret);
  }

  public static String mask(String text) {
    String masked = text;
    for (SecretMasker masker : ACTIVE) {
      masked = masker.mask(masked);
    }
    return masked;
  }
}

package dev.slipway.worker.runtime.logging;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The maskers that log lines are cleaned with: one per running job, plus one for secrets from
 * configuration. The logging layouts consult it for every line, so even a plugin's own SLF4J
 * logging cannot print a job's token. A line logged on a job's behalf (its MDC carries the job
 * id) is masked with that job's secrets and the configuration's only, so a job cannot blank out
 * other jobs' lines with its secrets; a line of no job is masked with every running job's.
 */
public final class LogMasking {
  private static final Map<String, SecretMasker> JOBS = new ConcurrentHashMap<>();
  private static final SecretMasker CONFIGURATION = new SecretMasker();

  private LogMasking() {}

  /** Masks the job's secrets in its lines (and in lines of no job) until unregistered. */
  public static void register(String jobId, SecretMasker masker) {
    JOBS.put(jobId, masker);
  }

  public static void unregister(String jobId, SecretMasker masker) {
    JOBS.remove(jobId, masker);
  }

  /** Masks a secret that lives as long as the worker, such as a password from configuration. */
  public static void addWorkerSecret(String secret) {
    CONFIGURATION.add(secret);
  }

  /** Masks a line of no particular job: with every running job's secrets. */
  public static String mask(String text) {
    return mask(text, null);
  }

  /**
   * Masks a line logged on behalf of {@code jobId}, or of no job when it is null or no longer
   * running.
   */
  public static String mask(String text, String jobId) {
    String masked = CONFIGURATION.mask(text);
    SecretMasker own = jobId == null ? null : JOBS.get(jobId);
    if (own != null) {
      return own.mask(masked);
    }
    for (SecretMasker masker : JOBS.values()) {
      masked = masker.mask(masked);
    }
    return masked;
  }
}

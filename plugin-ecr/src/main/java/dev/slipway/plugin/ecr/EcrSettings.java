package dev.slipway.plugin.ecr;

import com.typesafe.config.Config;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageSettings;
import dev.slipway.worker.api.WorkerEnvironment;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The ecr stage's configuration, the block {@code worker.stages.ecr}, read and checked once at
 * start-up together with the worker's region and credentials. See {@code reference.conf} for what
 * each setting means.
 *
 * @param timeout longest the stage may take (the runtime enforces it)
 * @param region the AWS region, from the stage's block or the worker's
 * @param registryIds registry (AWS account) ids to get tokens for; empty for the caller's own
 * @param endpointOverride the endpoint to call instead of ECR's public one
 * @param maxAttempts HTTP requests per GetAuthorizationToken call, the first included
 * @param apiCallTimeout longest one GetAuthorizationToken call may take, retries included
 * @param connectTimeout longest to wait for a connection to ECR
 * @param refreshWhenRemaining share of a token's lifetime below which it is fetched anew
 * @param credentials where the AWS credentials come from
 */
record EcrSettings(
    Duration timeout,
    String region,
    List<String> registryIds,
    Optional<URI> endpointOverride,
    int maxAttempts,
    Duration apiCallTimeout,
    Duration connectTimeout,
    double refreshWhenRemaining,
    CredentialsSource credentials) {

  static final int MAX_ATTEMPTS_LIMIT = 10;
  private static final Duration MIN_TIMEOUT = Duration.ofMillis(100);
  /** AWS region names: eu-west-1, us-gov-west-1, cn-north-1, eu-isoe-west-1, ... */
  private static final Pattern REGION = Pattern.compile("[a-z]{2}(-[a-z]+)+-[0-9]+");
  /** Registry ids are AWS account ids. */
  private static final Pattern ACCOUNT_ID = Pattern.compile("[0-9]{12}");
  private static final Set<String> LOOPBACK_HOSTS = Set.of("127.0.0.1", "localhost", "[::1]", "::1");

  EcrSettings {
    registryIds = List.copyOf(registryIds);
  }

  /** What the SDK client is built from. */
  ClientSpec clientSpec() {
    return new ClientSpec(
        region, endpointOverride, maxAttempts, apiCallTimeout, connectTimeout, credentials);
  }

  /**
   * Reads every setting of {@code config}, the {@code worker.stages.ecr} block, and the region and
   * credentials of {@code environment}. The runtime has refused unknown keys and checked {@code
   * timeout} already; it is read here only to check that api-call-timeout fits inside it.
   *
   * @throws StageConfigException listing every problem found, each naming its key
   */
  static EcrSettings from(Config config, WorkerEnvironment environment)
      throws StageConfigException {
    StageSettings s = new StageSettings(config, environment.home());
    Duration timeout = s.read("timeout", config::getDuration, null);
    String region = region(s, environment);
    List<String> registryIds = registryIds(s, s.stringList("registry-ids"));
    Optional<URI> endpointOverride = endpoint(s, s.string("endpoint-override"));
    int maxAttempts = s.read("max-attempts", config::getInt, 1);
    if (maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
      s.problem("max-attempts", maxAttempts + " is not allowed; use 1 (no retry) to "
          + MAX_ATTEMPTS_LIMIT + ", e.g. 3");
    }
    Duration apiCallTimeout = s.read("api-call-timeout", config::getDuration, null);
    if (apiCallTimeout != null) {
      if (apiCallTimeout.compareTo(MIN_TIMEOUT) < 0) {
        s.problem("api-call-timeout", apiCallTimeout.toMillis()
            + "ms is too short; use at least 100ms, e.g. 20s");
      } else if (timeout != null && apiCallTimeout.compareTo(timeout) > 0) {
        s.problem("api-call-timeout", apiCallTimeout.toMillis()
            + "ms is longer than the stage's timeout (" + timeout.toMillis()
            + "ms), which would cut the call short; make it shorter than timeout");
      }
    }
    Duration connectTimeout = s.read("connect-timeout", config::getDuration, null);
    if (connectTimeout != null) {
      if (connectTimeout.compareTo(MIN_TIMEOUT) < 0
          || connectTimeout.toMillis() > Integer.MAX_VALUE) {
        // The SDK's URL-connection client takes it in whole milliseconds, as an int.
        s.problem("connect-timeout", connectTimeout.toMillis()
            + "ms is not allowed; use at least 100ms and at most 24 days, e.g. 5s");
      } else if (apiCallTimeout != null && connectTimeout.compareTo(apiCallTimeout) > 0) {
        s.problem("connect-timeout", connectTimeout.toMillis()
            + "ms is longer than api-call-timeout (" + apiCallTimeout.toMillis()
            + "ms), so it would never apply; make it shorter, e.g. 5s");
      }
    }
    double share = s.read("refresh-when-remaining", config::getDouble, 1.0);
    if (!(share > 0 && share <= 1)) {
      s.problem("refresh-when-remaining", share
          + " is not allowed; use a share of the token's lifetime above 0 and at most 1,"
          + " e.g. 0.5 (1 fetches a token for every job; 0 would hand out tokens about to"
          + " expire)");
    }
    // The environment's problems name no key of the block, so they join the list as they are.
    List<String> environmentProblems = new ArrayList<>();
    CredentialsSource credentials = CredentialsSource.from(environment, environmentProblems);
    List<String> problems = new ArrayList<>(s.problems());
    problems.addAll(environmentProblems);
    if (!problems.isEmpty()) {
      throw new StageConfigException(problems);
    }
    return new EcrSettings(
        timeout,
        region,
        registryIds,
        endpointOverride,
        maxAttempts,
        apiCallTimeout,
        connectTimeout,
        share,
        credentials);
  }

  /** The stage's region, else the worker's; null (and a problem) when neither is right. */
  private static String region(StageSettings s, WorkerEnvironment environment) {
    int before = s.problems().size();
    String region = s.string("region");
    if (s.problems().size() > before) {
      return null; // missing or not a string: already a problem
    }
    String source = "";
    if (region.isEmpty()) {
      Optional<String> worker = environment.region().map(String::trim).filter(r -> !r.isEmpty());
      if (worker.isEmpty()) {
        s.problem("region", "not set; set worker.stages.ecr.region, worker.region or AWS_REGION"
            + " to the region of the registry, e.g. eu-west-1");
        return null;
      }
      region = worker.get();
      source = " (from worker.region / AWS_REGION)";
    }
    if (!REGION.matcher(region).matches()) {
      s.problem("region", "'" + region + "'" + source + " is not an AWS region name; use one such"
          + " as eu-west-1 or us-east-1 (lower case)");
      return null;
    }
    return region;
  }

  private static List<String> registryIds(StageSettings s, List<String> configured) {
    Set<String> ids = new LinkedHashSet<>();
    for (String id : configured) {
      String trimmed = id.trim();
      if (!ACCOUNT_ID.matcher(trimmed).matches()) {
        s.problem("registry-ids", "'" + id + "' is not a registry id; use the 12-digit AWS"
            + " account id that owns the registry, e.g. \"123456789012\" (quoted, to keep leading"
            + " zeros)");
      } else if (!ids.add(trimmed)) {
        s.problem("registry-ids", "'" + trimmed + "' is listed twice; list each registry once");
      }
    }
    return List.copyOf(ids);
  }

  private static Optional<URI> endpoint(StageSettings s, String value) {
    String trimmed = value.trim();
    if (trimmed.isEmpty()) {
      return Optional.empty();
    }
    String example = "e.g. https://api.ecr.eu-west-1.amazonaws.com or a VPC endpoint's https URL";
    URI uri;
    try {
      uri = new URI(trimmed);
    } catch (URISyntaxException e) {
      s.problem("endpoint-override",
          "'" + trimmed + "' is not a valid URL (" + e.getReason() + "); " + example);
      return Optional.empty();
    }
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    if (!scheme.equals("https") && !scheme.equals("http")) {
      s.problem("endpoint-override",
          "'" + trimmed + "' must be an absolute http(s) URL; " + example);
      return Optional.empty();
    }
    if (uri.getHost() == null || uri.getHost().isEmpty()) {
      s.problem("endpoint-override", "'" + trimmed + "' has no valid host; " + example);
      return Optional.empty();
    }
    if (uri.getRawUserInfo() != null || uri.getRawQuery() != null || uri.getRawFragment() != null) {
      s.problem("endpoint-override", "must not contain user info, a query or a fragment; give"
          + " only scheme, host and port, " + example);
      return Optional.empty();
    }
    if (uri.getRawPath() != null && !uri.getRawPath().isEmpty() && !uri.getRawPath().equals("/")) {
      s.problem("endpoint-override",
          "'" + trimmed + "' has a path; ECR's API lives at the root, " + example);
      return Optional.empty();
    }
    if (scheme.equals("http") && !LOOPBACK_HOSTS.contains(uri.getHost().toLowerCase(Locale.ROOT))) {
      // The answer carries the registry password; over plain http anyone on the path reads it.
      s.problem("endpoint-override", "plain http is allowed only on loopback (127.0.0.1,"
          + " localhost, [::1]) since ECR's answer carries the registry password; use https");
      return Optional.empty();
    }
    return Optional.of(URI.create(scheme + "://" + uri.getRawAuthority()));
  }
}

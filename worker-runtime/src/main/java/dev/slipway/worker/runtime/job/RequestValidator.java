package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.runtime.errors.RejectedJobException;
import dev.slipway.worker.runtime.errors.RejectedJobException.Reason;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The runtime's own checks of a request, made before any stage sees it. Stage-specific rules (URL
 * schemes, ref names, image references) belong to the stages' {@code validate}.
 */
final class RequestValidator {
  private static final Pattern JOB_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  private static final Pattern BUILD_ARG = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,127}");
  private static final int MAX_VALUE = 4096;

  private RequestValidator() {}

  static void validate(JobRequestView request) throws RejectedJobException {
    if (!JOB_ID.matcher(request.jobId()).matches()) {
      throw invalid("job_id: '" + printable(request.jobId()) + "' must be 1-128 letters, digits,"
          + " '.', '_' or '-', starting with a letter or digit; leave it empty to get one");
    }
    if (request.repoUrl().isBlank()) {
      throw invalid("repo_url is required: the git repository to build,"
          + " e.g. https://github.com/acme/app.git");
    }
    plain("repo_url", request.repoUrl());
    plain("branch", request.branch());
    if (request.imageName().isBlank()) {
      throw invalid("image_name is required: the image to build, repository[:tag],"
          + " e.g. acme/app:1.4");
    }
    plain("image_name", request.imageName());
    relative("dockerfile_path", request.dockerfilePath());
    relative("context_dir", request.contextDir());
    for (Map.Entry<String, String> arg : request.buildArgs().entrySet()) {
      if (!BUILD_ARG.matcher(arg.getKey()).matches()) {
        throw invalid("build_args: '" + printable(arg.getKey()) + "' is not a valid build"
            + " argument name; use letters, digits and '_', not starting with a digit");
      }
      if (arg.getValue().length() > MAX_VALUE || arg.getValue().indexOf('\0') >= 0) {
        throw invalid("build_args." + arg.getKey() + ": the value must be at most " + MAX_VALUE
            + " characters without NUL");
      }
    }
  }

  private static void plain(String field, String value) throws RejectedJobException {
    if (value.length() > MAX_VALUE) {
      throw invalid(field + ": longer than " + MAX_VALUE + " characters");
    }
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (Character.isISOControl(c) || Character.isWhitespace(c)) {
        throw invalid(field + ": must not contain whitespace or control characters");
      }
    }
    if (value.startsWith("-")) {
      throw invalid(field + ": must not start with '-'");
    }
  }

  private static void relative(String field, String value) throws RejectedJobException {
    plain(field, value);
    if (value.startsWith("/")) {
      throw invalid(field + ": '" + value + "' must be relative to the repository root,"
          + " e.g. docker/Dockerfile");
    }
  }

  private static String printable(String s) {
    String cut = s.length() > 64 ? s.substring(0, 64) + "..." : s;
    return cut.replaceAll("\\p{Cntrl}", "?");
  }

  private static RejectedJobException invalid(String message) {
    return new RejectedJobException(Reason.INVALID_REQUEST, message);
  }
}

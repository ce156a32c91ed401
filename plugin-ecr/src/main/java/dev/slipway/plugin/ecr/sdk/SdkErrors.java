package dev.slipway.plugin.ecr.sdk;

import dev.slipway.plugin.ecr.EcrFailure;
import dev.slipway.plugin.ecr.EcrFailure.Reason;
import dev.slipway.worker.api.Secret;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.nio.channels.ClosedByInterruptException;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SSLException;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.AbortedException;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkException;

/** Turns the SDK's exceptions into {@link EcrFailure}s, with every known secret masked. */
final class SdkErrors {
  private SdkErrors() {}

  /** AWS's codes for credentials it does not accept (unknown, wrong, expired, unsigned). */
  static final Set<String> CREDENTIALS_REFUSED =
      Set.of(
          "UnrecognizedClientException",
          "InvalidSignatureException",
          "SignatureDoesNotMatch",
          "IncompleteSignature",
          "IncompleteSignatureException",
          "InvalidClientTokenId",
          "InvalidAccessKeyId",
          "ExpiredToken",
          "ExpiredTokenException",
          "RequestExpired",
          "MissingAuthenticationToken",
          "MissingAuthenticationTokenException",
          "AuthFailure");

  /** AWS's codes for a known principal that may not do this. */
  static final Set<String> ACCESS_DENIED =
      Set.of("AccessDeniedException", "AccessDenied", "UnauthorizedOperation");

  static final Set<String> THROTTLING =
      Set.of(
          "ThrottlingException",
          "Throttling",
          "TooManyRequestsException",
          "RequestLimitExceeded",
          "RequestThrottled",
          "RequestThrottledException",
          "ServiceUnavailable",
          "ServiceUnavailableException");

  /** Whether {@code e} is the SDK telling that the call was stopped by an interrupt. */
  static boolean isInterruption(SdkException e) {
    if (e instanceof ApiCallTimeoutException || e instanceof ApiCallAttemptTimeoutException) {
      return false; // the SDK's own timeout, which it implements with an interrupt
    }
    return e instanceof AbortedException
        || has(e, InterruptedException.class)
        || has(e, ClosedByInterruptException.class)
        || (has(e, InterruptedIOException.class) && !has(e, SocketTimeoutException.class));
  }

  /** Whether {@code e} says that no credentials were found. */
  static boolean isMissingCredentials(SdkException e) {
    String message = String.valueOf(e.getMessage());
    return message.startsWith("Unable to load credentials")
        || message.contains("Unable to load credentials from any of the providers");
  }

  static EcrFailure map(SdkException e, int attempts, List<Secret> secrets) {
    if (e instanceof AwsServiceException service) {
      return service(service, attempts, secrets);
    }
    String detail = mask(rootDetail(e), secrets);
    String type = root(e).getClass().getSimpleName();
    if (e instanceof ApiCallTimeoutException || e instanceof ApiCallAttemptTimeoutException) {
      return new EcrFailure(
          Reason.UNREACHABLE,
          "no answer in time (" + mask(e.getMessage(), secrets) + ")",
          e.getClass().getSimpleName(),
          attempts,
          e);
    }
    if (has(e, UnknownHostException.class)) {
      return new EcrFailure(Reason.UNREACHABLE, "unknown host (" + detail + ")", type, attempts, e);
    }
    if (has(e, ConnectException.class)
        || has(e, NoRouteToHostException.class)
        || has(e, SocketTimeoutException.class)
        || has(e, SocketException.class)
        || has(e, SSLException.class)) {
      return new EcrFailure(Reason.UNREACHABLE, detail, type, attempts, e);
    }
    if (isMissingCredentials(e)) {
      return new EcrFailure(Reason.NO_CREDENTIALS, mask(e.getMessage(), secrets), type, attempts, e);
    }
    if (isUnmarshallingFailure(e)) {
      return new EcrFailure(
          Reason.INVALID_RESPONSE,
          "the answer is not ECR's JSON (" + firstLine(detail) + ")",
          type,
          attempts,
          e);
    }
    return new EcrFailure(Reason.FAILED, mask(String.valueOf(e.getMessage()), secrets), type, attempts, e);
  }

  private static EcrFailure service(AwsServiceException e, int attempts, List<Secret> secrets) {
    AwsErrorDetails details = e.awsErrorDetails();
    String code = details == null || details.errorCode() == null ? "" : details.errorCode();
    String text =
        details == null || details.errorMessage() == null ? "" : details.errorMessage().trim();
    int status = e.statusCode();
    String detail =
        mask(text.isEmpty() ? "no message" : text, secrets)
            + " (HTTP "
            + status
            + (e.requestId() == null || e.requestId().isEmpty() ? "" : ", request id " + e.requestId())
            + ")";
    String errorCode = code.isEmpty() ? "HTTP " + status : code;
    Reason reason;
    if (CREDENTIALS_REFUSED.contains(code) || (status == 401 && !ACCESS_DENIED.contains(code))) {
      reason = Reason.CREDENTIALS_REFUSED;
    } else if (ACCESS_DENIED.contains(code) || status == 403) {
      reason = Reason.ACCESS_DENIED;
    } else if (THROTTLING.contains(code) || status == 429 || status >= 500) {
      reason = Reason.UNAVAILABLE;
    } else {
      reason = Reason.FAILED;
    }
    return new EcrFailure(reason, detail, errorCode, attempts, e);
  }

  private static boolean isUnmarshallingFailure(SdkException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String name = t.getClass().getName();
      String message = String.valueOf(t.getMessage());
      if (name.startsWith("software.amazon.awssdk.thirdparty.jackson")
          || message.contains("Unable to unmarshall")
          || message.contains("Unable to parse")) {
        return true;
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return false;
  }

  private static boolean has(Throwable e, Class<? extends Throwable> type) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (type.isInstance(t)) {
        return true;
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return false;
  }

  private static Throwable root(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t;
  }

  /** The innermost cause, as {@code ConnectException: Connection refused}. */
  private static String rootDetail(Throwable e) {
    Throwable root = root(e);
    String message = root.getMessage();
    return root.getClass().getSimpleName() + (message == null ? "" : ": " + message);
  }

  private static String firstLine(String text) {
    int end = text.indexOf('\n');
    return (end < 0 ? text : text.substring(0, end)).trim();
  }

  static String mask(String text, List<Secret> secrets) {
    String result = text == null ? "" : text;
    for (Secret secret : secrets) {
      if (secret.reveal().length() >= 8) {
        result = result.replace(secret.reveal(), "****");
      }
    }
    return result;
  }
}

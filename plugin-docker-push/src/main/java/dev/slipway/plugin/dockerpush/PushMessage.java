package dev.slipway.plugin.dockerpush;

import java.util.Optional;

/**
 * One message of the engine's push stream (a docker-java {@code PushResponseItem}, without its
 * types).
 *
 * @param layer the layer (short id) the message is about; empty for messages about the push
 * @param status e.g. {@code Preparing}, {@code Pushing}, {@code Pushed}, {@code Layer already
 *     exists}, {@code 1.2: digest: sha256:... size: 527}; may be empty
 * @param current bytes done, for {@code Pushing}
 * @param total bytes in all, for {@code Pushing}; 0 when unknown
 * @param error the engine's error message, when the message reports a failure
 * @param errorCode the error's code, when the engine gave one (an HTTP status, often absent)
 * @param digest the pushed manifest's digest, from the stream's final {@code aux} message
 */
record PushMessage(
    Optional<String> layer,
    String status,
    long current,
    long total,
    Optional<String> error,
    Optional<Integer> errorCode,
    Optional<String> digest) {

  static PushMessage status(String layer, String status) {
    return new PushMessage(Optional.ofNullable(layer), status, 0, 0, Optional.empty(), Optional.empty(), Optional.empty());
  }

  static PushMessage progress(String layer, long current, long total) {
    return new PushMessage(Optional.of(layer), "Pushing", current, total, Optional.empty(), Optional.empty(), Optional.empty());
  }

  static PushMessage error(String message, Integer code) {
    return new PushMessage(Optional.empty(), "", 0, 0, Optional.of(message), Optional.ofNullable(code), Optional.empty());
  }

  static PushMessage digest(String digest) {
    return new PushMessage(Optional.empty(), "", 0, 0, Optional.empty(), Optional.empty(), Optional.of(digest));
  }

  boolean isError() {
    return error.isPresent();
  }
}

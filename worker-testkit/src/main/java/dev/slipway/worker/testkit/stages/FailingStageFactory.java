package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageConfigException;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code test-fail}: fails every job with the configured {@code code} and {@code message}, or
 * throws an unchecked exception when {@code unchecked = true}.
 */
public final class FailingStageFactory implements StageFactory {
  @Override
  public String id() {
    return "test-fail";
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) throws StageConfigException {
    List<String> problems = new ArrayList<>();
    String code = config.getString("code");
    if (!code.contains(".")) {
      problems.add("code: '" + code + "' must look like 'area.what'");
    }
    String message = config.getString("message");
    boolean unchecked = config.getBoolean("unchecked");
    boolean retryable = config.getBoolean("retryable");
    ErrorKind kind = ErrorKind.EXTERNAL;
    try {
      kind = ErrorKind.valueOf(config.getString("kind"));
    } catch (IllegalArgumentException e) {
      problems.add("kind: '" + config.getString("kind") + "' is not one of "
          + java.util.Arrays.toString(ErrorKind.values()));
    }
    ErrorKind errorKind = kind;
    if (!problems.isEmpty()) {
      throw new StageConfigException(problems);
    }
    return context -> {
      context.log().line("about to fail");
      if (unchecked) {
        throw new IllegalStateException(message);
      }
      throw new StageException(code, errorKind, message, null, retryable);
    };
  }
}

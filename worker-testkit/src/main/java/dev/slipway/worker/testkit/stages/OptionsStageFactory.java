package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.ErrorCode;
import dev.slipway.worker.api.ErrorKind;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.api.WorkerEnvironment;
import java.util.List;
import java.util.regex.Pattern;

/**
 * {@code test-options}: declares one option of each kind and logs, one line each, the options it
 * was handed ({@code option <name>=<value>}, the secret one too, which the runtime must mask).
 * Its check of a request refuses {@code greeting=refuse} with {@code test.refused}.
 */
public final class OptionsStageFactory implements StageFactory {

  /** The stage's error codes. */
  public enum Codes implements ErrorCode {
    REFUSED("test.refused", ErrorKind.INVALID_REQUEST);

    private final String code;
    private final ErrorKind kind;

    Codes(String code, ErrorKind kind) {
      this.code = code;
      this.kind = kind;
    }

    @Override
    public String code() {
      return code;
    }

    @Override
    public ErrorKind kind() {
      return kind;
    }
  }

  @Override
  public String id() {
    return "test-options";
  }

  @Override
  public String description() {
    return "Logs the per-job options it is handed";
  }

  @Override
  public List<StageOption> options() {
    return List.of(
        StageOption.string("greeting", "hello", "What to greet with")
            .matching(Pattern.compile("[a-z]{1,16}"), "1-16 lower case letters"),
        StageOption.integer("count", 1, 10, "1", "How many times"),
        StageOption.bool("loud", "false", "Whether to shout"),
        StageOption.string("password", "none", "A secret the stage is handed").secret());
  }

  @Override
  public List<Codes> errorCodes() {
    return List.of(Codes.values());
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) {
    return new Stage() {
      @Override
      public void validate(JobRequestView request, StageOptions options) throws StageException {
        if (options.string("greeting").filter("refuse"::equals).isPresent()) {
          throw new StageException(Codes.REFUSED, "greeting 'refuse' is refused by the stage");
        }
      }

      @Override
      public void execute(dev.slipway.worker.api.JobContext context) {
        context.options().asMap().forEach((k, v) -> context.log().line("option " + k + "=" + v));
        context.log().line("options handed: " + context.options().asMap().size());
      }
    };
  }
}

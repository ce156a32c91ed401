package dev.slipway.worker.testkit.stages;

import com.typesafe.config.Config;
import dev.slipway.worker.api.Secret;
import dev.slipway.worker.api.Stage;
import dev.slipway.worker.api.StageFactory;
import dev.slipway.worker.api.WorkerEnvironment;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.slf4j.LoggerFactory;

/**
 * {@code test-secret-log}: a careless stage that prints the job's token in every form a real tool
 * might: plain, base64, URL-encoded, split across two writes of a process stream, inside a log
 * statement of its own, and in an exception message.
 */
public final class SecretLoggingStageFactory implements StageFactory {
  @Override
  public String id() {
    return "test-secret-log";
  }

  @Override
  public Stage create(Config config, WorkerEnvironment environment) {
    boolean failWithSecret = config.getBoolean("fail-with-secret");
    return context -> {
      String token = context.request().token().map(Secret::reveal).orElse("");
      context.log().line("plain " + token);
      context.log().line(
          "base64 " + Base64.getEncoder().encodeToString(token.getBytes(StandardCharsets.UTF_8)));
      context.log().line("url https://x-access-token:"
          + URLEncoder.encode(token, StandardCharsets.UTF_8) + "@example.test/repo.git");
      byte[] bytes = ("split " + token + " done\n").getBytes(StandardCharsets.UTF_8);
      int cut = 6 + token.length() / 2;
      try (OutputStream out = context.log().lineStream()) {
        out.write(bytes, 0, cut);
        out.flush();
        out.write(bytes, cut, bytes.length - cut);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
      LoggerFactory.getLogger(SecretLoggingStageFactory.class).info("slf4j {}", token);
      if (failWithSecret) {
        throw new IllegalStateException("server said: bad token " + token);
      }
    };
  }
}

package dev.slipway.worker.runtime.registration;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class BackoffTest {
  @Test
  void growsExponentiallyWithJitterAndIsCapped() {
    Duration initial = Duration.ofMillis(100);
    Duration max = Duration.ofMillis(1600);
    for (int i = 0; i < 200; i++) {
      long first = Registrar.backoff(1, initial, max).toMillis();
      assertTrue(first >= 50 && first <= 100, "attempt 1: " + first);
      long third = Registrar.backoff(3, initial, max).toMillis();
      assertTrue(third >= 200 && third <= 400, "attempt 3: " + third);
      long late = Registrar.backoff(40, initial, max).toMillis();
      assertTrue(late >= 800 && late <= 1600, "attempt 40: " + late);
    }
  }
}

package dev.slipway.worker.runtime.cli;

import sun.misc.Signal;

/**
 * SIGTERM and SIGINT handling. A JVM shutdown hook would exit with 143 after SIGTERM; handling the
 * signal itself lets the worker drain and then exit 0, as a clean stop should.
 */
final class Signals {
  private Signals() {}

  /**
   * @param action runs on the first SIGTERM or SIGINT (the drain)
   * @param again runs on each later one (an operator who will not wait for the drain)
   */
  static void onTermination(Runnable action, Runnable again) {
    Runnable once = new Runnable() {
      private boolean ran;

      @Override
      public synchronized void run() {
        Thread t = new Thread(ran ? again : action, ran ? "shutdown-now" : "shutdown");
        ran = true;
        t.start();
      }
    };
    Signal.handle(new Signal("TERM"), s -> once.run());
    Signal.handle(new Signal("INT"), s -> once.run());
  }
}

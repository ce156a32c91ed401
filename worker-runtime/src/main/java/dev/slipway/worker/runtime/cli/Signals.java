package dev.slipway.worker.runtime.cli;

import sun.misc.Signal;

/**
 * SIGTERM and SIGINT handling. A JVM shutdown hook would exit with 143 after SIGTERM; handling the
 * signal itself lets the worker drain and then exit 0, as a clean stop should.
 */
final class Signals {
  private Signals() {}

  static void onTermination(Runnable action) {
    Runnable once = new Runnable() {
      private boolean ran;

      @Override
      public synchronized void run() {
        if (!ran) {
          ran = true;
          Thread t = new Thread(action, "shutdown");
          t.start();
        }
      }
    };
    Signal.handle(new Signal("TERM"), s -> once.run());
    Signal.handle(new Signal("INT"), s -> once.run());
  }
}

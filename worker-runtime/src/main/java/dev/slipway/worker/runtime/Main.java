package dev.slipway.worker.runtime;

import dev.slipway.worker.runtime.cli.WorkerCli;

/** The launcher's entry point. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    System.exit(WorkerCli.run(args));
  }
}

/**
 * The module the end-to-end tests run in (they are patched into it; it has no code of its own).
 * It requires the runtime and the four bundled plugins so that all of them are resolved as
 * named modules on the module path, as in production, not as class path jars.
 */
module dev.slipway.worker.e2e {
  requires dev.slipway.worker.runtime;
  requires dev.slipway.proto;
  requires dev.slipway.plugin.git;
  requires dev.slipway.plugin.buildkit;
  requires dev.slipway.plugin.ecr;
  requires dev.slipway.plugin.dockerpush;
}

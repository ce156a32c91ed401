module dev.slipway.plugin.buildkit {
  requires dev.slipway.worker.api;
}

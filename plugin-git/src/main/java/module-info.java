module dev.slipway.plugin.git {
  requires dev.slipway.worker.api;
}

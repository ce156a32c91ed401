/**
 * The stage SPI of the Slipway build worker.
 *
 * <p>A plugin is a module that {@code provides dev.slipway.worker.api.StageFactory with ...} and
 * exports nothing. The runtime discovers it with {@link java.util.ServiceLoader}, hands it its own
 * block of HOCON configuration at start-up and runs the {@link dev.slipway.worker.api.Stage} it
 * creates once per job, in the order {@code worker.pipeline} names.
 */
module dev.slipway.worker.api {
  // Plugins receive their configuration as a typesafe Config, so it is part of this API.
  requires transitive typesafe.config;

  exports dev.slipway.worker.api;
}

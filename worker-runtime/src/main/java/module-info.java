module dev.slipway.worker.runtime { }

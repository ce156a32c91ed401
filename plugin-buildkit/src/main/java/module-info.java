/**
 * The {@code buildkit} stage of the Slipway build worker: builds the job's image with BuildKit
 * through {@code scripts/build.sh}. Exports nothing; the runtime finds the stage through the
 * provided {@link dev.slipway.worker.api.StageFactory}.
 */
module dev.slipway.plugin.buildkit {
  requires dev.slipway.worker.api;
  // Start-up warnings; the runtime's layer brings SLF4J and its binding.
  requires org.slf4j;

  provides dev.slipway.worker.api.StageFactory with
      dev.slipway.plugin.buildkit.BuildkitStageFactory;
}

package dev.slipway.worker.runtime.pipeline;

import dev.slipway.worker.api.Stage;
import dev.slipway.worker.runtime.plugins.DiscoveredStage;
import java.time.Duration;

/**
 * One configured stage of the pipeline.
 *
 * @param id the stage id
 * @param plugin where the stage came from
 * @param stage the stage, created once at start-up
 * @param timeout the longest the stage may run in one job
 */
public record PipelineStage(String id, DiscoveredStage plugin, Stage stage, Duration timeout) {}

package dev.slipway.worker.runtime.job;

import java.time.Duration;

/**
 * How one stage of a job ended.
 *
 * @param stage the stage id
 * @param success whether it completed
 * @param duration how long it ran
 * @param message what happened, masked
 */
public record StageOutcome(String stage, boolean success, Duration duration, String message) {}

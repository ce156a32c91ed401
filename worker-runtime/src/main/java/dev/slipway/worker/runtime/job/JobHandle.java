package dev.slipway.worker.runtime.job;

import java.util.concurrent.CompletableFuture;

/**
 * A started job.
 *
 * @param jobId the job's id, generated when the request had none
 * @param result completes when the job has ended and its slot is free again
 */
public record JobHandle(String jobId, CompletableFuture<JobResult> result) {}

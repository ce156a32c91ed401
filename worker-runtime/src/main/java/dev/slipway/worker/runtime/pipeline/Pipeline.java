package dev.slipway.worker.runtime.pipeline;

import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The ordered stages every job runs, assembled once at start-up. */
public final class Pipeline implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Pipeline.class);
  private final List<PipelineStage> stages;

  public Pipeline(List<PipelineStage> stages) {
    this.stages = List.copyOf(stages);
  }

  public List<PipelineStage> stages() {
    return stages;
  }

  public List<String> ids() {
    return stages.stream().map(PipelineStage::id).toList();
  }

  @Override
  public void close() {
    for (PipelineStage s : stages) {
      try {
        s.stage().close();
      } catch (RuntimeException e) {
        LOG.warn("stage '{}' failed to close: {}", s.id(), e.toString());
      }
    }
  }
}

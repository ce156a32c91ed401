package dev.slipway.worker.runtime.job;

import dev.slipway.worker.api.StageOption;
import dev.slipway.worker.api.StageOptions;
import dev.slipway.worker.runtime.errors.RejectedJobException;
import dev.slipway.worker.runtime.errors.RejectedJobException.Reason;
import dev.slipway.worker.runtime.pipeline.PipelineStage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * Checks a job's {@code stage_options} against what the pipeline's stages declare and splits them
 * by stage, so that each stage gets only its own, without its prefix.
 */
final class StageOptionCheck {
  /** Most options one job may set: far above what any pipeline declares. */
  static final int MAX_OPTIONS = 64;
  /** Longest value of one option, in characters. */
  static final int MAX_VALUE_LENGTH = 4096;

  /** The options of one job, checked: by stage id, and the values of secret ones. */
  record Checked(Map<String, StageOptions> byStage, List<String> secretValues) {
    static final Checked NONE = new Checked(Map.of(), List.of());

    StageOptions of(String stageId) {
      return byStage.getOrDefault(stageId, StageOptions.none());
    }
  }

  private StageOptionCheck() {}

  /**
   * @param given the job's options, {@code "<stage-id>.<option>" -> value}
   * @throws RejectedJobException INVALID_REQUEST naming every wrong option and what is known;
   *     never quoting a secret option's value
   */
  static Checked check(Map<String, String> given, List<PipelineStage> stages)
      throws RejectedJobException {
    if (given.isEmpty()) {
      return Checked.NONE;
    }
    List<String> problems = new ArrayList<>();
    if (given.size() > MAX_OPTIONS) {
      throw refused(List.of("stage_options: " + given.size() + " options set; at most "
          + MAX_OPTIONS + " are allowed"));
    }
    Map<String, Map<String, String>> byStage = new LinkedHashMap<>();
    List<String> secrets = new ArrayList<>();
    for (Map.Entry<String, String> entry : new TreeMap<>(given).entrySet()) {
      String key = entry.getKey();
      String value = entry.getValue();
      int dot = key.indexOf('.');
      String stageId = dot < 0 ? key : key.substring(0, dot);
      Optional<PipelineStage> stage = stages.stream().filter(s -> s.id().equals(stageId))
          .findFirst();
      if (dot <= 0 || dot == key.length() - 1) {
        problems.add("stage_options key '" + printable(key) + "' is not '<stage>.<option>', e.g. "
            + example(stages));
        continue;
      }
      if (stage.isEmpty()) {
        problems.add("stage_options key '" + printable(key) + "': no stage '" + printable(stageId)
            + "' in this worker's pipeline " + stages.stream().map(PipelineStage::id).toList());
        continue;
      }
      String name = key.substring(dot + 1);
      List<StageOption> declared = stage.get().plugin().factory().options();
      Optional<StageOption> option = declared.stream().filter(o -> o.name().equals(name))
          .findFirst();
      if (option.isEmpty()) {
        problems.add("stage_options key '" + printable(key) + "': stage '" + stageId
            + "' has no option '" + printable(name) + "'; it has " + (declared.isEmpty() ? "none"
                : declared.stream().map(o -> stageId + "." + o.name()).toList()));
        continue;
      }
      if (option.get().isSecret()) {
        secrets.add(value);
      }
      if (value.length() > MAX_VALUE_LENGTH) {
        problems.add("stage_options '" + key + "': the value has " + value.length()
            + " characters; at most " + MAX_VALUE_LENGTH + " are allowed");
        continue;
      }
      if (value.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
        problems.add("stage_options '" + key + "': the value has a control character; "
            + option.get().expected() + " has none");
        continue;
      }
      Optional<String> refusal = option.get().refusal(value);
      if (refusal.isPresent()) {
        problems.add("stage_options '" + key + "': " + refusal.get());
        continue;
      }
      byStage.computeIfAbsent(stageId, k -> new LinkedHashMap<>()).put(name, value);
    }
    if (!problems.isEmpty()) {
      throw refused(problems);
    }
    Map<String, StageOptions> options = new LinkedHashMap<>();
    byStage.forEach((id, values) -> options.put(id, StageOptions.of(values)));
    return new Checked(Map.copyOf(options), List.copyOf(secrets));
  }

  private static RejectedJobException refused(List<String> problems) {
    return new RejectedJobException(Reason.INVALID_REQUEST, String.join("; ", problems));
  }

  private static String example(List<PipelineStage> stages) {
    return stages.stream()
        .flatMap(s -> s.plugin().factory().options().stream().map(o -> s.id() + "." + o.name()))
        .findFirst().map(k -> "'" + k + "'").orElse("'git.depth' (this pipeline declares none)");
  }

  /** A key as it may be quoted back: control characters shown as escapes, at most 100 long. */
  private static String printable(String text) {
    String shown = text.chars().limit(100)
        .mapToObj(c -> c < 0x20 || c == 0x7f ? String.format("\\x%02x", c)
            : String.valueOf((char) c))
        .collect(Collectors.joining());
    return text.length() > 100 ? shown + "..." : shown;
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.StageException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a job's request asks to push: {@code image_name} as Docker reads it, and the extra tags
 * ({@code extra_tags}) to push the same image under, checked. {@code validate}, {@code pushTargets}
 * and {@code execute} all read the request through here, so that what is admitted is what is
 * pushed.
 *
 * @param name the parsed {@code image_name}
 * @param extraTags the extra tags, in the caller's order, each valid and none repeated
 */
record RequestedImage(ImageName name, List<String> extraTags) {
  /** The most extra tags one job may push. */
  static final int MAX_EXTRA_TAGS = 16;

  private static final String TAG_RULE =
      "1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-', e.g. 'main' or 'v1.2.3'";

  RequestedImage {
    extraTags = List.copyOf(extraTags);
  }

  /**
   * Reads the request.
   *
   * @throws StageException {@code push.invalid-request} when {@code image_name} is not {@code
   *     [registry/]repository[:tag]}, or the extra tags are not all valid, distinct tags other than
   *     the main one, at most {@value #MAX_EXTRA_TAGS}; the message names every problem
   */
  static RequestedImage of(JobRequestView request) throws StageException {
    ImageName name;
    try {
      name = ImageName.parse(request.imageName());
    } catch (IllegalArgumentException e) {
      throw new StageException(PushErrors.INVALID_REQUEST, e.getMessage());
    }
    List<String> tags = request.extraTags();
    List<String> problems = new ArrayList<>();
    if (tags.size() > MAX_EXTRA_TAGS) {
      problems.add("extra_tags has " + tags.size() + " tags, at most " + MAX_EXTRA_TAGS + " are allowed; push the"
          + " others in another job");
    }
    String mainTag = name.tag().orElse(ImageName.DEFAULT_TAG);
    // Tags are case-sensitive in registries: "Main" and "main" are two tags.
    Map<String, Integer> seen = new LinkedHashMap<>();
    for (int i = 0; i < tags.size(); i++) {
      String tag = tags.get(i);
      String which = "extra_tags[" + i + "] '" + tag + "'";
      if (!ImageName.TAG.matcher(tag).matches()) {
        problems.add(which + " is not a tag; a tag is " + TAG_RULE);
      } else if (tag.equals(mainTag)) {
        problems.add(which + " is the main tag, the one image_name '" + request.imageName() + "' "
            + (name.tag().isPresent() ? "gives" : "gets when it gives none") + "; the image is pushed under it"
            + " anyway, so leave it out of extra_tags");
      } else if (seen.containsKey(tag)) {
        problems.add(which + " repeats extra_tags[" + seen.get(tag) + "]; give each tag once");
      } else {
        seen.put(tag, i);
      }
    }
    if (!problems.isEmpty()) {
      throw new StageException(PushErrors.INVALID_REQUEST, String.join("; ", problems));
    }
    return new RequestedImage(name, tags);
  }

  /** Every destination of the job: {@code main} first, then one per extra tag, in order. */
  List<ImageName.Target> targets(ImageName.Target main) {
    List<ImageName.Target> targets = new ArrayList<>(1 + extraTags.size());
    targets.add(main);
    extraTags.forEach(tag -> targets.add(main.withTag(tag)));
    return targets;
  }
}

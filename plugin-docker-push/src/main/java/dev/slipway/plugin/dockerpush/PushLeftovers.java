package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobLog;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The destination names a push borrows in the engine, as the stage notes them before each tag
 * ({@code JobContext.recordLeftover}) and as a worker started after a crash puts them right. A
 * destination name may have belonged to another image before the push: that image is given the
 * name back, never left without it. Records, names and image ids only:
 *
 * <ul>
 *   <li>{@code hold <registry> <repository> <tag> <image id> <hold registry> <hold repository>
 *       <hold tag>}: the image that had the destination name is about to be kept under a holding
 *       name ({@code slipway.local/held-<hex>:held});
 *   <li>{@code tag <registry> <repository> <tag> <image id>}: the destination name is about to
 *       point at the job's image;
 *   <li>{@code keep <registry> <repository> <tag> <image id>}: the job pushed, and asked to keep
 *       the destination name on its image ({@code remove-local-tags=false}); the image that had it
 *       is about to lose its holding name.
 * </ul>
 *
 * For each destination, recovery looks at what the name points at now: at the job's image, or at
 * nothing, it goes back to the image that had it (by id, so even a lost holding name does not lose
 * it), or is removed when no image had it; pointing at any other image, someone has used it since
 * and it is left alone. The holding name is removed once the image has the destination name back,
 * and kept (with a line in the log) when that image has no other name. A kept name that still
 * points at the job's image stays; only the holding name goes, leaving the image that had the name
 * with its id, as the job would have.
 */
final class PushLeftovers {
  static final String TAG = "tag ";
  static final String HOLD = "hold ";
  static final String KEEP = "keep ";
  private static final Pattern IMAGE_ID = Pattern.compile("sha256:[0-9a-f]{64}");

  private final ImageEngine engine;

  PushLeftovers(ImageEngine engine) {
    this.engine = engine;
  }

  /** The record made before pointing {@code target} at the job's image {@code imageId}. */
  static String tag(ImageName.Target target, String imageId) {
    return TAG + fields(target) + " " + imageId;
  }

  /** The record made before keeping image {@code imageId}, which had {@code target}, as {@code hold}. */
  static String hold(ImageName.Target target, String imageId, ImageName.Target hold) {
    return HOLD + fields(target) + " " + imageId + " " + fields(hold);
  }

  /** The record made before keeping {@code target} on the job's image {@code imageId} after the push. */
  static String keep(ImageName.Target target, String imageId) {
    return KEEP + fields(target) + " " + imageId;
  }

  private static String fields(ImageName.Target t) {
    return t.registry() + " " + t.repository() + " " + t.tag();
  }

  /** What one destination name went through. */
  private static final class Borrowed {
    final ImageName.Target target;
    Optional<String> jobImage = Optional.empty();
    Optional<String> previousImage = Optional.empty();
    Optional<ImageName.Target> holdName = Optional.empty();
    boolean kept;

    Borrowed(ImageName.Target target) {
      this.target = target;
    }
  }

  /**
   * Puts right every destination name of {@code recorded}.
   *
   * @throws EngineException when the engine cannot be reached or refuses, so that the records are
   *     kept for the next start
   */
  void putRight(List<String> recorded, JobLog log) throws EngineException {
    Map<String, Borrowed> names = new LinkedHashMap<>();
    for (String record : recorded) {
      String[] f = record.split(" ");
      if (record.startsWith(TAG) && f.length == 5 && IMAGE_ID.matcher(f[4]).matches()) {
        ImageName.Target t = new ImageName.Target(f[1], f[2], f[3]);
        names.computeIfAbsent(t.reference(), r -> new Borrowed(t)).jobImage = Optional.of(f[4]);
      } else if (record.startsWith(KEEP) && f.length == 5 && IMAGE_ID.matcher(f[4]).matches()) {
        ImageName.Target t = new ImageName.Target(f[1], f[2], f[3]);
        Borrowed b = names.computeIfAbsent(t.reference(), r -> new Borrowed(t));
        b.jobImage = Optional.of(f[4]);
        b.kept = true;
      } else if (record.startsWith(HOLD) && f.length == 8 && IMAGE_ID.matcher(f[4]).matches()
          && f[5].equals("slipway.local") && f[6].startsWith("held-")) {
        ImageName.Target t = new ImageName.Target(f[1], f[2], f[3]);
        Borrowed b = names.computeIfAbsent(t.reference(), r -> new Borrowed(t));
        b.previousImage = Optional.of(f[4]);
        b.holdName = Optional.of(new ImageName.Target(f[5], f[6], f[7]));
      } else {
        log.line("ignored a record this version does not know: " + record);
      }
    }
    List<EngineException> failures = new ArrayList<>();
    for (Borrowed b : names.values()) {
      try {
        putRight(b, log);
      } catch (EngineException e) {
        failures.add(e);
        if (e.reason() == EngineException.Reason.UNREACHABLE) {
          break;
        }
      }
    }
    if (!failures.isEmpty()) {
      throw failures.get(0);
    }
  }

  private void putRight(Borrowed b, JobLog log) throws EngineException {
    ImageName.Target target = b.target;
    Optional<String> now = engine.imageId(target.reference());
    boolean ours = now.isPresent() && now.equals(b.jobImage);
    if (b.kept && ours) {
      finishKeeping(b, log);
      return;
    }
    if (b.previousImage.isPresent()) {
      String previous = b.previousImage.get();
      boolean previousExists = engine.imageId(previous).isPresent();
      if ((now.isEmpty() || ours) && previousExists) {
        engine.tag(previous, target);
        log.line("gave " + target + " back to the image that had it before the push (" + LocalTags.shortId(previous) + ")");
      } else if (ours) {
        engine.removeTag(target.reference());
        log.line("removed local tag " + target + " (the image that had it before the push is gone)");
      } else if (now.isPresent() && !now.get().equals(previous)) {
        log.line("left " + target + " alone: it names another image now (" + LocalTags.shortId(now.get()) + ")");
      }
      ImageName.Target hold = b.holdName.orElseThrow();
      Optional<String> held = engine.imageId(hold.reference());
      if (held.isPresent() && held.get().equals(previous)
          && engine.imageId(target.reference()).equals(Optional.of(previous))) {
        engine.removeTag(hold.reference());
        log.line("removed the holding name " + hold);
      } else if (held.isPresent()) {
        log.line("kept " + hold + ": the image it names (" + LocalTags.shortId(held.get()) + ") did not get " + target
            + " back, and may have no other name");
      }
    } else if (ours) {
      engine.removeTag(target.reference());
      log.line("removed local tag " + target + ", which the push had pointed at the job's image");
    }
  }

  /**
   * The job had pushed and kept the name on its image: it stays. The image that had the name
   * loses its holding name but not its id: the holding name is pointed at the job's image before
   * it is removed, since removing an image's last name would delete the image.
   */
  private void finishKeeping(Borrowed b, JobLog log) throws EngineException {
    ImageName.Target target = b.target;
    if (b.holdName.isPresent()) {
      ImageName.Target hold = b.holdName.get();
      Optional<String> held = engine.imageId(hold.reference());
      if (held.isPresent() && (held.equals(b.previousImage) || held.equals(b.jobImage))) {
        if (!held.equals(b.jobImage)) {
          engine.tag(target.reference(), hold);
        }
        engine.removeTag(hold.reference());
        log.line("removed the holding name " + hold + "; the image that had " + target + " before the push keeps"
            + " its id without that name");
      }
    }
    log.line("left " + target + " on the job's pushed image: the job kept it (remove-local-tags=false)");
  }
}

package dev.slipway.plugin.dockerpush;

import dev.slipway.worker.api.JobContext;
import dev.slipway.worker.api.StageException;
import dev.slipway.worker.api.StageKeys;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * The local names a push needs on the shared engine: {@code docker push} pushes a local name, so
 * each destination ({@code registry/repository:tag}) must point at the job's image while it is
 * pushed, and another image may have it already. Under a lock per name ({@link LocalNameLocks}),
 * an image that had the name is kept under a private holding name, the name is pointed at the
 * job's image, and afterwards either given back (the default: the image that had it gets it back,
 * a name nobody had is removed) or, when the job asked ({@code remove-local-tags=false}) and its
 * push succeeded, kept on the job's image, the image that had it keeping its id without that name.
 * Each change is recorded before it is made ({@link PushLeftovers}), for a worker started after a
 * crash. The job's state is a {@link LocalNames}; this class holds none.
 */
final class LocalTags {
  private static final SecureRandom RANDOM = new SecureRandom();

  private final ImageEngine engine;
  private final LocalNameLocks locks;

  LocalTags(ImageEngine engine, LocalNameLocks locks) {
    this.engine = engine;
    this.locks = locks;
  }

  /**
   * Takes the lock of every name in {@code targets}, waiting for other jobs of the worker that
   * hold one. In one order for every job, so that two jobs that share two names cannot each wait
   * for the other's.
   */
  void lock(JobContext context, LocalNames names, List<ImageName.Target> targets, Cancellation cancellation)
      throws InterruptedException {
    List<ImageName.Target> sorted = targets.stream()
        .sorted(java.util.Comparator.comparing(ImageName.Target::reference)).toList();
    for (ImageName.Target target : sorted) {
      names.locked(locks.acquire(target.reference(), cancellation::isCancelled,
          () -> context.log().line("waiting for another job of this worker to finish its push of " + target)),
          target.reference());
    }
  }

  /**
   * Points {@code target}'s name at the job's image, under the job's lock on it. An image that
   * had the name is first given a private name of its own ({@code slipway.local/held-...:held}),
   * so that it cannot be pruned as dangling meanwhile and can get the name back; an image that
   * already is the job's needs nothing.
   */
  void tag(JobContext context, LocalNames names, String localImage, ImageName.Target target) throws StageException {
    try {
      Optional<String> localId = engine.imageId(localImage);
      if (localId.isEmpty()) {
        throw new StageException(
            PushErrors.IMAGE_NOT_FOUND,
            "the Docker engine has no image '" + localImage + "', which the build stage published as "
                + StageKeys.LOCAL_IMAGE.name() + "; was it removed in between?");
      }
      if (localImage.equals(target.reference())) {
        return; // a build stage that built under the destination name itself: nothing to tag
      }
      Optional<String> existing = engine.imageId(target.reference());
      if (existing.equals(localId)) {
        return; // the name already points at this very image
      }
      Optional<ImageName.Target> held = Optional.empty();
      if (existing.isPresent()) {
        ImageName.Target hold = holdName();
        context.recordLeftover(PushLeftovers.hold(target, existing.get(), hold));
        engine.tag(existing.get(), hold);
        held = Optional.of(hold);
        context.log().line("the engine already has another image under " + target + " (" + shortId(existing.get())
            + "); it is kept as " + hold + " during the push and gets the name back after it"
            + (names.keepAsked() ? ", unless the push succeeds: the job keeps its pushed names (remove-local-tags=false)"
                : ""));
      }
      // Noted before the tag, so that a tag that fails half-way is put back too.
      context.recordLeftover(PushLeftovers.tag(target, localId.get()));
      names.tagged(new LocalNames.Borrowed(target, held));
      engine.tag(localImage, target);
    } catch (EngineException e) {
      throw PushErrors.engineFailure(e);
    }
  }

  /**
   * Settles every name not settled yet: kept when {@link LocalNames#keeping()}, else given back.
   * Never throws; what could not be settled stays in {@code names} for another try. Runs with the
   * thread's interrupt cleared (a cancelled job must still put its names right).
   */
  void settle(JobContext context, LocalNames names) {
    boolean interrupted = Thread.interrupted();
    try {
      boolean keep = names.keeping();
      for (LocalNames.Borrowed borrowed : names.pending()) {
        if (!(keep && keep(context, names, borrowed))) {
          giveBack(context, names, borrowed);
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Gives the name back to the image that had it, or removes it when none had, and drops the
   * holding name.
   */
  private void giveBack(JobContext context, LocalNames names, LocalNames.Borrowed borrowed) {
    ImageName.Target target = borrowed.target();
    try {
      if (borrowed.held().isPresent()) {
        ImageName.Target hold = borrowed.held().get();
        engine.tag(hold.reference(), target);
        engine.removeTag(hold.reference());
        context.log().line("gave " + target + " back to the image that had it before the push");
      } else {
        engine.removeTag(target.reference());
        context.log().line("removed local tag " + target);
      }
      names.settled(borrowed);
    } catch (EngineException | RuntimeException e) {
      context.log().line("could not " + (borrowed.held().isPresent()
          ? "give " + target + " back to the image that had it (kept as " + borrowed.held().get() + ")"
          : "remove local tag " + target) + ": " + e.getMessage());
    }
  }

  /**
   * Leaves the name on the job's image, as the job asked. An image that had it loses it as with
   * {@code docker tag} over an existing name: it keeps its id (and any other name), and its holding
   * name goes without deleting it, by pointing the holding name at the job's image before
   * removing it ({@code docker rmi} of an image's last name would delete the image).
   *
   * @return false when the name cannot be kept (it is gone, or the keep could not be noted for
   *     crash recovery): it is then given back
   */
  private boolean keep(JobContext context, LocalNames names, LocalNames.Borrowed borrowed) {
    ImageName.Target target = borrowed.target();
    try {
      Optional<String> jobImage = engine.imageId(target.reference());
      if (jobImage.isEmpty()) {
        context.log().line("could not keep " + target + ": the engine no longer has the name, so it is given back");
        return false;
      }
      try {
        context.recordLeftover(PushLeftovers.keep(target, jobImage.get()));
      } catch (StageException e) {
        context.log().line("could not note that " + target + " is kept (" + e.getMessage() + "), so it is given"
            + " back instead");
        return false;
      }
      if (borrowed.held().isPresent()) {
        ImageName.Target hold = borrowed.held().get();
        engine.tag(target.reference(), hold);
        engine.removeTag(hold.reference());
        context.log().line("kept " + target + " on the pushed image (remove-local-tags=false); the image that had"
            + " it before keeps its id without that name, as after docker tag");
      } else {
        context.log().line("kept " + target + " on the pushed image (remove-local-tags=false)");
      }
      names.settled(borrowed);
    } catch (EngineException | RuntimeException e) {
      context.log().line("could not finish keeping " + target + ": " + e.getMessage()
          + borrowed.held().map(h -> "; the image that had it is still " + h).orElse(""));
    }
    return true;
  }

  /** A fresh private name for an image whose name a push borrows. */
  private static ImageName.Target holdName() {
    byte[] random = new byte[8];
    RANDOM.nextBytes(random);
    return new ImageName.Target("slipway.local", "held-" + HexFormat.of().formatHex(random), "held");
  }

  /** An image id as {@code docker images} shows it, 12 hex digits. */
  static String shortId(String id) {
    String hex = id.startsWith("sha256:") ? id.substring("sha256:".length()) : id;
    return hex.length() > 12 ? hex.substring(0, 12) : hex;
  }
}

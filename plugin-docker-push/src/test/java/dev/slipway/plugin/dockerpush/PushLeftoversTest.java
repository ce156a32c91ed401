package dev.slipway.plugin.dockerpush;

import static dev.slipway.plugin.dockerpush.Fixtures.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.slipway.worker.api.JobLog;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.testkit.DockerEngine;
import dev.slipway.worker.testkit.RecordingJobContext;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crash recovery of the destination names a push borrows: every change to the engine's names is
 * recorded before it is made, and a worker started after a crash gives a name back to the image
 * that had it, removes one nobody had, and leaves alone one that names someone else's image now.
 */
class PushLeftoversTest {
  static final DockerEngine DOCKER = DockerEngine.fromEnvironment();
  static final String IMAGE_NAME = "registry.example.com/team/app:1";
  static final String DESTINATION = IMAGE_NAME;

  @TempDir Path tmp;
  final List<String> toRemove = new CopyOnWriteArrayList<>();
  final List<String> log = new CopyOnWriteArrayList<>();
  final JobLog jobLog = new JobLog() {
    @Override
    public void line(String line) {
      log.add(line);
    }

    @Override
    public OutputStream lineStream() {
      return OutputStream.nullOutputStream();
    }
  };

  @AfterEach
  void removeImages() {
    if (!toRemove.isEmpty() && DOCKER.isAvailable()) {
      DOCKER.removeImages(toRemove.toArray(String[]::new));
    }
  }

  private DockerPushStage stage(ImageEngine engine) throws Exception {
    RegistryClient registry = new RegistryClient() {
      @Override
      public Optional<String> manifestDigest(ImageName.Target t, Optional<RegistryCredentials> c) {
        return Optional.of("sha256:" + "a".repeat(64));
      }

      @Override
      public void ping(ImageName.Target t, Optional<RegistryCredentials> c) {}
    };
    return new DockerPushStage(Fixtures.settings(map("registry", "registry.example.com")), engine,
        registry, System::nanoTime, new LocalNameLocks());
  }

  /** An engine that checks, at each tag, that the job's records already name it. */
  private static final class Checking implements ImageEngine {
    final FakeEngine engine;
    final RecordingJobContext job;
    final List<String> unrecorded = new CopyOnWriteArrayList<>();

    Checking(FakeEngine engine, RecordingJobContext job) {
      this.engine = engine;
      this.job = job;
    }

    @Override
    public Optional<String> imageId(String reference) throws EngineException {
      // Like the engine (the fake knows names only): an image id names its image.
      if (reference.startsWith("sha256:")) {
        return engine.names().containsValue(reference) ? Optional.of(reference) : Optional.empty();
      }
      return engine.imageId(reference);
    }

    @Override
    public void tag(String source, ImageName.Target target) throws EngineException {
      if (job.leftovers().stream().noneMatch(r -> r.contains(" " + target.registry() + " "
          + target.repository() + " " + target.tag()))) {
        unrecorded.add(target.reference());
      }
      engine.tag(source, target);
    }

    @Override
    public RunningPush push(ImageName.Target target, Optional<RegistryCredentials> credentials,
        Consumer<PushMessage> listener) throws EngineException {
      return engine.push(target, credentials, listener);
    }

    @Override
    public void removeTag(String reference) throws EngineException {
      engine.removeTag(reference);
    }

    @Override
    public void close() {}
  }

  @Test
  void aWorkerThatDiedMidPushHasTheDestinationGivenBackToItsOwner() throws Exception {
    String jobImage = "sha256:" + "1".repeat(64);
    String owners = "sha256:" + "2".repeat(64);
    FakeEngine engine = new FakeEngine().image("slipway.local/job-1-abcd0123:build", jobImage)
        .image(DESTINATION, owners);
    engine.hang = true;
    RecordingJobContext job = Fixtures.job(IMAGE_NAME, "slipway.local/job-1-abcd0123:build",
        Files.createDirectories(tmp.resolve("ws")));
    Checking checking = new Checking(engine, job);
    DockerPushStage dying = stage(checking);
    CompletableFuture<Throwable> pushing = CompletableFuture.supplyAsync(() -> {
      try {
        dying.execute(job);
        return null;
      } catch (Throwable t) {
        return t;
      }
    });
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (engine.pushes() == 0) {
      assertTrue(System.nanoTime() < end, "the push started");
      Thread.sleep(10);
    }
    // Mid-push, as a SIGKILL would leave it: the name points at the job's image, the owner's
    // image waits under a holding name.
    assertEquals(List.of(), checking.unrecorded, "every tag was recorded before it was made");
    assertEquals(jobImage, engine.names().get(DESTINATION));
    List<String> records = job.leftovers();
    assertEquals(2, records.size(), records.toString());
    assertTrue(records.get(0).startsWith("hold registry.example.com team/app 1 " + owners
        + " slipway.local held-"), records.toString());
    assertEquals("tag registry.example.com team/app 1 " + jobImage, records.get(1));
    assertFalse(String.join("\n", records).contains(Fixtures.TOKEN), "no token in the records");

    // The next worker: a new stage on the same engine.
    stage(checking).removeLeftovers(records, jobLog);
    Map<String, String> names = engine.names();
    assertEquals(owners, names.get(DESTINATION), "the name is the owner's again");
    assertEquals(List.of(DESTINATION, "slipway.local/job-1-abcd0123:build"),
        names.keySet().stream().sorted().toList(), "no holding name is left: " + names);
    assertTrue(log.stream().anyMatch(l -> l.startsWith("gave " + DESTINATION + " back")), log.toString());
    assertTrue(log.stream().anyMatch(l -> l.startsWith("removed the holding name slipway.local/held-")),
        log.toString());
    // Again: nothing more to do, nothing changes.
    log.clear();
    stage(checking).removeLeftovers(records, jobLog);
    assertEquals(names, engine.names());
    assertEquals(List.of(), log);
    job.cancel();
    pushing.get(10, TimeUnit.SECONDS);
  }

  @Test
  void anUnreachableEngineFailsTheRemovalSoTheRecordsAreKept() throws Exception {
    FakeEngine engine = new FakeEngine().image(DESTINATION, "sha256:" + "1".repeat(64));
    engine.failRemove = new EngineException(EngineException.Reason.UNREACHABLE, "no engine", null);
    RuntimeException e = assertThrows(IllegalStateException.class, () -> stage(engine)
        .removeLeftovers(List.of(PushLeftovers.tag(new ImageName.Target("registry.example.com",
            "team/app", "1"), "sha256:" + "1".repeat(64))), jobLog));
    assertTrue(e.getMessage().contains("no engine"), e.getMessage());
  }

  // ---------------------------------------------------------------------------------------------
  // The real engine, in each state a crash can leave.

  private static void needsEngine() {
    Optional<String> skip = DOCKER.skipReason();
    Assumptions.assumeTrue(skip.isEmpty(), () -> "needs a Docker engine: " + skip.orElseThrow());
  }

  /** A new image of its own (busybox plus a label), under {@code name}; returns its id. */
  private String image(String name) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("img-" + Fixtures.unique()));
    Files.writeString(dir.resolve("Dockerfile"),
        "FROM local/busybox:1\nLABEL dev.slipway.test.image=" + Fixtures.unique() + "\n");
    DockerEngine.Result built = DOCKER.docker("build", "-q", "--network=none", "-t", name, dir.toString());
    assertTrue(built.isSuccess(), built.output());
    toRemove.add(name);
    return id(name).orElseThrow();
  }

  private static Optional<String> id(String name) {
    DockerEngine.Result r = DOCKER.docker("image", "inspect", "--format", "{{.Id}}", name);
    return r.isSuccess() ? Optional.of(r.output().strip()) : Optional.empty();
  }

  private void tag(String source, String name) {
    assertTrue(DOCKER.docker("tag", source, name).isSuccess());
    toRemove.add(name);
  }

  private ImageEngine realEngine() throws Exception {
    return DockerJavaEngine.create(Fixtures.settings(map("docker-host", DOCKER.host().orElseThrow(),
        "registry", "registry.example.com")).engine());
  }

  @Test
  void onTheRealEngineEachStateACrashLeavesIsPutRight() throws Exception {
    needsEngine();
    String u = Fixtures.unique();
    ImageName.Target gaveBack = new ImageName.Target("registry.example.com", "crash/give-back-" + u, "1");
    ImageName.Target free = new ImageName.Target("registry.example.com", "crash/free-" + u, "1");
    ImageName.Target reused = new ImageName.Target("registry.example.com", "crash/reused-" + u, "1");
    ImageName.Target halfway = new ImageName.Target("registry.example.com", "crash/halfway-" + u, "1");
    ImageName.Target holdA = new ImageName.Target("slipway.local", "held-" + u + "a", "held");
    ImageName.Target holdB = new ImageName.Target("slipway.local", "held-" + u + "b", "held");

    String jobImage = image("slipway.local/crash-" + u + ":build");
    String owner = image("crash/owner-" + u + ":1");
    String other = image("crash/other-" + u + ":1");
    toRemove.addAll(List.of(gaveBack.reference(), free.reference(), reused.reference(),
        halfway.reference(), holdA.reference(), holdB.reference()));
    // 1. Crash mid-push: the owner's image waits as holdA, the name points at the job's image.
    tag(owner, holdA.reference());
    tag(jobImage, gaveBack.reference());
    // 2. A name nobody had, pointed at the job's image.
    tag(jobImage, free.reference());
    // 3. A name the job had borrowed, used by someone else since the crash.
    tag(other, reused.reference());
    // 4. Crash between keeping the owner's image as holdB and tagging: the name is still the owner's.
    tag(owner, halfway.reference());
    tag(owner, holdB.reference());
    List<String> records = List.of(
        PushLeftovers.hold(gaveBack, owner, holdA), PushLeftovers.tag(gaveBack, jobImage),
        PushLeftovers.tag(free, jobImage),
        PushLeftovers.tag(reused, jobImage),
        PushLeftovers.hold(halfway, owner, holdB));

    try (ImageEngine engine = realEngine()) {
      stage(engine).removeLeftovers(records, jobLog);
    }
    assertEquals(Optional.of(owner), id(gaveBack.reference()), "given back: " + log);
    assertEquals(Optional.empty(), id(holdA.reference()));
    assertEquals(Optional.empty(), id(free.reference()), "a name nobody had is removed: " + log);
    assertEquals(Optional.of(other), id(reused.reference()), "someone else's name is left alone");
    assertEquals(Optional.of(owner), id(halfway.reference()));
    assertEquals(Optional.empty(), id(holdB.reference()));
    assertEquals(Optional.of(jobImage), id("slipway.local/crash-" + u + ":build"),
        "the build's private name is the build stage's to remove");
    List<String> expected = new ArrayList<>(List.of(
        "gave " + gaveBack + " back to the image that had it before the push",
        "removed the holding name " + holdA,
        "removed local tag " + free + ", which the push had pointed at the job's image",
        "removed the holding name " + holdB));
    for (String line : expected) {
      assertTrue(log.stream().anyMatch(l -> l.startsWith(line)), line + " in " + log);
    }
    assertFalse(log.stream().anyMatch(l -> l.contains(reused.reference())), log.toString());
  }

  @Test
  void onTheRealEngineALostHoldingNameStillGivesTheNameBackByImageId() throws Exception {
    needsEngine();
    String u = Fixtures.unique();
    ImageName.Target target = new ImageName.Target("registry.example.com", "crash/lost-" + u, "1");
    ImageName.Target hold = new ImageName.Target("slipway.local", "held-" + u, "held");
    String jobImage = image("slipway.local/crash-lost-" + u + ":build");
    String owner = image("crash/owner-lost-" + u + ":1");
    toRemove.add(target.reference());
    tag(jobImage, target.reference());
    try (ImageEngine engine = realEngine()) {
      stage(engine).removeLeftovers(List.of(PushLeftovers.hold(target, owner, hold),
          PushLeftovers.tag(target, jobImage)), jobLog);
    }
    assertEquals(Optional.of(owner), id(target.reference()), log.toString());
  }

  @Test
  void onTheRealEngineAKeptNameStaysAndTheImageThatHadItKeepsItsId() throws Exception {
    needsEngine();
    String u = Fixtures.unique();
    // 1. Crash after the keep was noted, before the holding name went: it names the owner still.
    ImageName.Target kept = new ImageName.Target("registry.example.com", "crash/kept-" + u, "1");
    ImageName.Target holdA = new ImageName.Target("slipway.local", "held-" + u + "a", "held");
    // 2. Crash after the holding name was pointed at the job's image, before it was removed.
    ImageName.Target halfKept = new ImageName.Target("registry.example.com", "crash/half-kept-" + u, "1");
    ImageName.Target holdB = new ImageName.Target("slipway.local", "held-" + u + "b", "held");
    // 3. Noted as kept, but someone pointed the name at another image since.
    ImageName.Target moved = new ImageName.Target("registry.example.com", "crash/moved-" + u, "1");

    String jobImage = image("slipway.local/crash-kept-" + u + ":build");
    String owner = image(holdA.reference());
    String other = image("crash/other-kept-" + u + ":1");
    toRemove.addAll(List.of(kept.reference(), halfKept.reference(), moved.reference(), holdB.reference(), owner));
    tag(jobImage, kept.reference());
    tag(jobImage, halfKept.reference());
    tag(jobImage, holdB.reference());
    tag(other, moved.reference());
    List<String> records = List.of(
        PushLeftovers.hold(kept, owner, holdA), PushLeftovers.tag(kept, jobImage), PushLeftovers.keep(kept, jobImage),
        PushLeftovers.tag(halfKept, jobImage), PushLeftovers.hold(halfKept, owner, holdB),
        PushLeftovers.keep(halfKept, jobImage),
        PushLeftovers.tag(moved, jobImage), PushLeftovers.keep(moved, jobImage));

    try (ImageEngine engine = realEngine()) {
      stage(engine).removeLeftovers(records, jobLog);
    }
    assertEquals(Optional.of(jobImage), id(kept.reference()), "the kept name stays: " + log);
    assertEquals(Optional.of(jobImage), id(halfKept.reference()));
    assertEquals(Optional.empty(), id(holdA.reference()));
    assertEquals(Optional.empty(), id(holdB.reference()));
    DockerEngine.Result ownerTags = DOCKER.docker("image", "inspect", "--format", "{{json .RepoTags}}", owner);
    assertTrue(ownerTags.isSuccess(), "the image that had the name keeps its id: " + ownerTags.output());
    assertEquals("[]", ownerTags.output().strip(), "without a name, as after docker tag over it");
    assertEquals(Optional.of(other), id(moved.reference()), "a name someone else uses now is left alone");
    assertTrue(log.stream().anyMatch(l -> l.startsWith("left " + kept + " on the job's pushed image")), log.toString());
    assertTrue(log.stream().anyMatch(l -> l.startsWith("removed the holding name " + holdA)), log.toString());
  }
}

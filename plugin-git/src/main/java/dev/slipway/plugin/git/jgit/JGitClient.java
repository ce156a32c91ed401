package dev.slipway.plugin.git.jgit;

import dev.slipway.plugin.git.CacheSettings;
import dev.slipway.plugin.git.CloneFailure;
import dev.slipway.plugin.git.CloneFailure.Reason;
import dev.slipway.plugin.git.CloneListener;
import dev.slipway.plugin.git.CloneResult;
import dev.slipway.plugin.git.CloneSpec;
import dev.slipway.plugin.git.GitClient;
import dev.slipway.plugin.git.Sizes;
import java.io.File;
import java.io.IOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;
import org.eclipse.jgit.api.CloneCommand;
import org.eclipse.jgit.api.FetchCommand;
import org.eclipse.jgit.api.Git;
import org.eclipse.jgit.api.InitCommand;
import org.eclipse.jgit.api.TransportCommand;
import org.eclipse.jgit.api.errors.GitAPIException;
import org.eclipse.jgit.api.errors.JGitInternalException;
import org.eclipse.jgit.dircache.DirCacheCheckout;
import org.eclipse.jgit.errors.ConfigInvalidException;
import org.eclipse.jgit.errors.IncorrectObjectTypeException;
import org.eclipse.jgit.errors.NoRemoteRepositoryException;
import org.eclipse.jgit.lib.Constants;
import org.eclipse.jgit.lib.NullProgressMonitor;
import org.eclipse.jgit.lib.ObjectId;
import org.eclipse.jgit.lib.ObjectReader;
import org.eclipse.jgit.lib.Ref;
import org.eclipse.jgit.lib.RefUpdate;
import org.eclipse.jgit.lib.Repository;
import org.eclipse.jgit.lib.StoredConfig;
import org.eclipse.jgit.revwalk.RevCommit;
import org.eclipse.jgit.revwalk.RevObject;
import org.eclipse.jgit.revwalk.RevTree;
import org.eclipse.jgit.revwalk.RevWalk;
import org.eclipse.jgit.storage.file.FileRepositoryBuilder;
import org.eclipse.jgit.submodule.SubmoduleWalk;
import org.eclipse.jgit.transport.CredentialsProvider;
import org.eclipse.jgit.transport.RefSpec;
import org.eclipse.jgit.transport.Transport;
import org.eclipse.jgit.transport.TransportHttp;
import org.eclipse.jgit.transport.URIish;
import org.eclipse.jgit.treewalk.TreeWalk;

/**
 * {@link GitClient} on JGit, over smart HTTP only.
 *
 * <p>A clone is two steps: {@code ls-remote} finds the branch (the remote's default one when none
 * is asked for, so that even that clone is single-branch; a missing branch is reported with the
 * ones that exist, before anything is written), then a single-branch clone of it, shallow unless
 * depth is 0, without checkout; the checkout follows once the files it writes are known to fit
 * {@code max-checkout-size} (see {@link SizeLimit}, which also counts the bytes received and
 * watches the disk). Submodules are cloned afterwards, each only once its URL has passed the same
 * rules as the repository's and the caller's repository check, and each held to the same limit.
 *
 * <p>A ref or an exact commit is fetched into a new repository instead ({@code git init} and
 * {@code git fetch}), after the same {@code ls-remote}: the ref alone, or the commit by its id; a
 * server that will not send a commit by id (no {@code uploadpack.allowReachableSHA1InWant} or
 * {@code allowAnySHA1InWant}) has the history of the branch or ref searched for it instead,
 * deeper and deeper. HEAD is then detached at exactly that commit, checked out as above.
 *
 * <p>With a mirror cache ({@link MirrorCache}), the same {@code ls-remote} comes first, with the
 * job's token, always; then, under the mirror's lock, the mirror of this URL and token gets what
 * it lacks of the branch, ref or commit (the same fetches as above, into the mirror; nothing when
 * it has it), and the checkout is a new repository whose objects are copied from the mirror
 * ({@link MirrorObjects}): exactly what a clone at the job's depth would hold, standing alone. A
 * mirror that cannot be read or updated is removed and built again once; a cache that cannot
 * serve the clone (busy past {@code lock-timeout}, or broken twice) leaves it to the server.
 */
public final class JGitClient implements GitClient {
  /** A mirror with more packs than this is repacked into one, in the background. */
  static final int REPACK_PACKS = 16;

  /** The mirrors; null without a cache. */
  private final MirrorCache cache;
  /** Repacks mirrors and makes ready checkouts off the jobs' threads; null without a cache. */
  private final ExecutorService maintenance;
  private final Set<String> repacking = ConcurrentHashMap.newKeySet();
  /** Ready checkouts being made, by key and shape. */
  private final Set<String> preparing = ConcurrentHashMap.newKeySet();
  /** Whether ready checkouts are made and used: on when configured, off once a rename failed. */
  private volatile boolean readyCheckouts;

  private static final java.util.concurrent.atomic.AtomicBoolean CONFIGURED =
      new java.util.concurrent.atomic.AtomicBoolean();

  /**
   * JGit's process-wide settings, once: the host's git configuration kept out, and a pack cache
   * that holds a checkout's packs. With JGit's defaults (8 KiB windows, 10 MiB in all, 10 MiB of
   * delta bases) a checkout of the benchmark's 14.5 MiB pack read its windows again and again:
   * 630 to 650 ms on each of three runs in one JVM, against 270 to 610 ms with these (the first
   * run in a new JVM being the slowest). Heap: up to 32 MiB of windows for the process, and up to
   * 16 MiB of delta bases per open object reader (one per running clone or background task);
   * both are held through soft references, which the collector clears under pressure.
   */
  private static void configureJGit() {
    IsolatedSystemReader.install();
    if (CONFIGURED.compareAndSet(false, true)) {
      org.eclipse.jgit.storage.file.WindowCacheConfig packs =
          new org.eclipse.jgit.storage.file.WindowCacheConfig();
      packs.setPackedGitWindowSize(64 * 1024);
      packs.setPackedGitLimit(32L * 1024 * 1024);
      packs.setDeltaBaseCacheLimit(16 * 1024 * 1024);
      packs.install();
    }
  }

  /** Without a mirror cache: every clone from the server alone. */
  public JGitClient() {
    configureJGit();
    this.cache = null;
    this.maintenance = null;
    this.readyCheckouts = false;
  }

  /**
   * With the mirror cache {@code settings} describe, when enabled.
   *
   * @throws IOException when the cache's directory cannot be made or written
   */
  public JGitClient(CacheSettings settings) throws IOException {
    configureJGit();
    if (!settings.enabled()) {
      this.cache = null;
      this.maintenance = null;
      return;
    }
    this.cache = new MirrorCache(settings);
    this.readyCheckouts = settings.readyCheckouts();
    // One thread, and none while there is nothing to do.
    ThreadPoolExecutor executor = new ThreadPoolExecutor(1, 1, 30, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), r -> {
          Thread t = new Thread(r, "git-mirror-maintenance");
          t.setDaemon(true);
          return t;
        });
    executor.allowCoreThreadTimeOut(true);
    this.maintenance = executor;
  }

  @Override
  public void removeLeftovers(List<String> records, Consumer<String> log) {
    for (String record : records) {
      if (!record.startsWith(MirrorCache.LEFTOVER)) {
        continue;
      }
      Path path;
      try {
        path = Path.of(record.substring(MirrorCache.LEFTOVER.length()));
      } catch (java.nio.file.InvalidPathException e) {
        continue;
      }
      if (cache != null && cache.isTemp(path)) {
        cache.removeAbandoned(path, log);
      } else if (Files.exists(path) && path.getParent() != null
          && path.getParent().getFileName() != null
          && path.getParent().getFileName().toString().equals("tmp")
          && path.getFileName().toString().matches("[0-9a-f]{64}\\.[0-9a-f]{16}")) {
        // The cache moved or was turned off since; the path was this dead job's alone.
        try {
          MirrorCache.deleteTree(path);
          log.accept("removed the unfinished git mirror " + path);
        } catch (IOException e) {
          log.accept("could not remove the unfinished git mirror " + path + ": " + e.getMessage());
        }
      }
    }
  }

  @Override
  public void close() {
    if (maintenance != null) {
      maintenance.shutdownNow();
      try {
        maintenance.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * The ready checkouts to make once their job is over, by the job's checkout: made while the
   * job's build and push run, they took the cores and the disk from them (a small build's stage
   * took 0.45 to 0.65 s instead of about 0.2 s).
   */
  private final Map<Path, Prepare> afterJob = new ConcurrentHashMap<>();

  /** Most checkouts waiting for their job's end; past it (a stage without cleanups) all start. */
  private static final int MAX_WAITING = 8;

  private void prepareAfterJob(Path checkout, Prepare p) {
    afterJob.put(checkout.toAbsolutePath().normalize(), p);
    if (afterJob.size() > MAX_WAITING) {
      startWaiting();
    }
  }

  /** Starts every ready checkout still waiting for its job's end. */
  private void startWaiting() {
    for (Path checkout : List.copyOf(afterJob.keySet())) {
      Prepare p = afterJob.remove(checkout);
      if (p != null) {
        prepareLater(p);
      }
    }
  }

  @Override
  public void discardCheckout(Path checkout) {
    Prepare next = afterJob.remove(checkout.toAbsolutePath().normalize());
    if (next != null) {
      prepareLater(next); // queued before the deletion below: the next job may want it
    }
    if (cache == null || !Files.isDirectory(checkout)) {
      return;
    }
    Optional<Path> moved = cache.toTrash(checkout);
    if (moved.isEmpty()) {
      return; // the runtime deletes it with the workspace
    }
    Runnable delete = () -> {
      try {
        MirrorCache.deleteTree(moved.get());
      } catch (IOException e) {
        // trash/ is emptied when a stage next opens the cache.
      }
    };
    try {
      maintenance.execute(delete);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      delete.run(); // closed: now, then
    }
  }

  @Override
  public void awaitMaintenance() throws InterruptedException {
    startWaiting();
    if (maintenance != null) {
      try {
        maintenance.submit(() -> {}).get();
      } catch (java.util.concurrent.ExecutionException
          | java.util.concurrent.RejectedExecutionException e) {
        // Nothing is queued any more.
      }
    }
  }

  /** What a ready checkout is made of: the job's request as far as its checkout goes. */
  private record Prepare(String key, URI url, String branch, String ref, int depth,
      ObjectId tip, long maxBytes) {}

  /**
   * Makes, in the background, a checkout of {@code p.tip} for the next job of the same branch or
   * ref and depth ({@link ReadyCheckouts}). The mirror is held only while the objects are copied
   * from it and while the checkout is put into place; the files are written without holding it.
   */
  private void prepareLater(Prepare p) {
    String id = p.key() + "/" + ReadyCheckouts.shape(p.branch(), p.ref(), p.depth());
    if (maintenance == null || !readyCheckouts || !preparing.add(id)) {
      return;
    }
    try {
      maintenance.execute(() -> {
        try {
          prepare(p);
        } catch (Exception e) {
          // The next job writes its files itself; nothing else depends on this.
        } finally {
          preparing.remove(id);
        }
      });
    } catch (java.util.concurrent.RejectedExecutionException e) {
      preparing.remove(id); // closed
    }
  }

  private void prepare(Prepare p) throws Exception {
    String shape = ReadyCheckouts.shape(p.branch(), p.ref(), p.depth());
    Path readyDir = cache.readyDir(p.key());
    if (ReadyCheckouts.find(readyDir, shape, p.tip()).isPresent()) {
      return;
    }
    Path temp = cache.newReadyTemp();
    Thread self = Thread.currentThread();
    try {
      ObjectId commit;
      try (MirrorLock lock = cache.lock(p.key(), self::isInterrupted)) {
        Path dir = cache.mirror(p.key());
        if (lock == null || !MirrorCache.isMirror(dir)) {
          return;
        }
        try (Repository mirror = new FileRepositoryBuilder().setGitDir(dir.toFile())
            .setMustExist(true).build()) {
          if (!MirrorObjects.hasHistory(mirror, p.tip(), p.depth())) {
            return;
          }
          commit = mirror.resolve(p.tip().name() + "^{commit}");
          if (commit == null) {
            return;
          }
          InitCommand init = Git.init().setDirectory(temp.toFile());
          if (!p.branch().isEmpty()) {
            init.setInitialBranch(p.branch());
          }
          init.call().close();
          long[] written = {0};
          MirrorObjects.writePack(mirror, p.tip(), p.depth(), temp.resolve(Constants.DOT_GIT),
              NullProgressMonitor.INSTANCE, bytes -> {
                written[0] += bytes;
                if (self.isInterrupted() || written[0] > p.maxBytes()) {
                  throw new java.io.InterruptedIOException("not made");
                }
              });
        }
      }
      try (Repository repository = new FileRepositoryBuilder()
          .setGitDir(temp.resolve(Constants.DOT_GIT).toFile()).setMustExist(true).build()) {
        writeCheckoutConfig(repository, p.url(), p.branch(),
            Optional.of(p.ref()));
        setCheckoutRefs(repository, p.branch(), p.ref(), p.tip(), commit);
        RevCommit parsed;
        try (RevWalk walk = new RevWalk(repository)) {
          parsed = walk.parseCommit(commit);
        }
        new DirCacheCheckout(repository, repository.lockDirCache(), parsed.getTree()).checkout();
        if (p.branch().isEmpty()) {
          RefUpdate head = repository.updateRef(Constants.HEAD, true);
          head.setNewObjectId(commit);
          head.forceUpdate();
        }
      }
      long bytes = MirrorCache.size(temp);
      if (bytes > p.maxBytes() || self.isInterrupted()) {
        return;
      }
      try (MirrorLock lock = cache.lock(p.key(), self::isInterrupted)) {
        if (lock == null || !MirrorCache.isMirror(cache.mirror(p.key()))) {
          return;
        }
        // Within max-size, or not at all: a mirror is worth more than a checkout made from it.
        long others = ReadyCheckouts.list(readyDir).stream()
            .filter(r -> r.shape().equals(shape)).mapToLong(ReadyCheckouts.Ready::bytes).sum();
        if (cache.totalSize() - others + bytes > cache.maxSize()) {
          return;
        }
        List<ReadyCheckouts.Ready> kept = new ArrayList<>();
        for (ReadyCheckouts.Ready r : ReadyCheckouts.list(readyDir)) {
          if (r.shape().equals(shape) || kept.size() >= ReadyCheckouts.MAX_PER_MIRROR - 1) {
            cache.discard(r.dir());
          } else {
            kept.add(r);
          }
        }
        Files.createDirectories(readyDir);
        Files.move(temp, readyDir.resolve(ReadyCheckouts.name(shape, p.tip(), bytes)),
            java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        temp = null;
      }
    } finally {
      if (temp != null) {
        cache.discard(temp);
      }
    }
  }

  /**
   * A checkout's config, as a clone writes it: {@code remote.origin.url}, the refspec of the one
   * branch or ref, and for a branch its {@code branch.B.*} section. Never a credential.
   */
  static void writeCheckoutConfig(
      Repository repository, URI url, String branch, Optional<String> source) throws IOException {
    StoredConfig config = repository.getConfig();
    config.setString("remote", "origin", "url", url.toString());
    if (source.isPresent()) {
      config.setString("remote", "origin", "fetch", Clone.refSpec(source.get()).toString());
    }
    if (!branch.isEmpty()) {
      config.setString("branch", branch, "remote", "origin");
      config.setString("branch", branch, "merge", Constants.R_HEADS + branch);
    }
    config.save();
  }

  /** The refs a clone of {@code ref} at {@code tip} has: its tracking ref, and the branch. */
  private static void setCheckoutRefs(Repository repository, String branch, String ref,
      ObjectId tip, ObjectId commit) throws IOException {
    for (String[] update : branch.isEmpty()
        ? new String[][] {{Clone.localName(ref), tip.name()}}
        : new String[][] {{Clone.localName(ref), tip.name()},
            {Constants.R_HEADS + branch, commit.name()}}) {
      RefUpdate u = repository.updateRef(update[0]);
      u.setNewObjectId(ObjectId.fromString(update[1]));
      RefUpdate.Result result = u.forceUpdate();
      if (result != RefUpdate.Result.NEW && result != RefUpdate.Result.FORCED
          && result != RefUpdate.Result.NO_CHANGE) {
        throw new IOException("cannot set " + update[0] + ": " + result);
      }
    }
  }

  /**
   * Repacks the mirror of {@code key} into one pack, in the background, once it has many: every
   * fetch of new commits adds a small pack, and reads get slower with each. Skipped when a job
   * holds the mirror; the next job's clone asks again.
   */
  private void repackLater(String key) {
    if (maintenance == null || !repacking.add(key)) {
      return;
    }
    try {
      maintenance.execute(() -> {
        try (MirrorLock lock = MirrorLock.tryAcquire(cache.lockFileOf(key))) {
          Path dir = cache.mirror(key);
          if (lock == null || !MirrorCache.isMirror(dir)) {
            return;
          }
          try (Repository mirror = new FileRepositoryBuilder().setGitDir(dir.toFile())
              .setMustExist(true).build()) {
            // Nobody reads the mirror while it is locked: old packs may go at once. Set in the
            // mirror's config, which the public gc command reads (JGit's GC class is internal).
            StoredConfig config = mirror.getConfig();
            if (!"now".equals(config.getString("gc", null, "prunePackExpire"))) {
              config.setString("gc", null, "prunePackExpire", "now");
              config.save();
            }
            Git.wrap(mirror).gc().setExpire(java.time.Instant.now()).call();
          }
        } catch (Exception e) {
          // A failed repack leaves the packs as they were; reads stay correct.
        } finally {
          repacking.remove(key);
        }
      });
    } catch (java.util.concurrent.RejectedExecutionException e) {
      repacking.remove(key); // closed
    }
  }

  @Override
  public CloneResult cloneRepository(CloneSpec spec, CloneListener listener)
      throws CloneFailure, InterruptedException {
    SizeLimit limit = new SizeLimit(spec.maxCheckoutSize(), spec.directory());
    GuardedConnectionFactory connections =
        new GuardedConnectionFactory(spec.url(), (int) spec.timeout().toMillis(), limit);
    listener.onCancel(connections::abort);
    // Over the limit, the clone stops as on cancellation: its sockets close at once, and JGit,
    // which polls the progress monitor between objects and files, stops at the next one.
    limit.onExceeded(connections::abort);
    try (limit) {
      limit.startWatching(SizeLimit.WATCH_INTERVAL);
      CloneResult result = new Clone(spec, listener, connections, limit).run();
      if (limit.exceeded()) {
        throw limit.failure(null); // The watcher tripped while the clone finished.
      }
      return result;
    } catch (CloneFailure | GitAPIException | JGitInternalException | IOException
        | ConfigInvalidException | TransportRefusedException e) {
      // An aborted socket looks like a network failure; the cancellation is the real cause.
      if (listener.isCancelled()) {
        throw cancelled(e);
      }
      // Whatever JGit made of the closed sockets or the cancelled monitor, this is the cause.
      if (limit.exceeded()) {
        throw e instanceof CloneFailure f && f.reason() == Reason.TOO_LARGE ? f : limit.failure(e);
      }
      if (e instanceof CloneFailure failure) {
        throw failure;
      }
      throw classify(e);
    }
  }

  /**
   * The depths at which the history is searched for a commit the server will not send by id:
   * the configured depth, then 10, 100 and 1000 commits, then the whole history; the whole
   * history at once when that is what is configured (0). A search ends early once a fetch
   * brings the whole history.
   */
  static List<Integer> searchDepths(int configured) {
    List<Integer> depths = new ArrayList<>();
    if (configured > 0) {
      depths.add(configured);
      for (int depth : new int[] {10, 100, 1000}) {
        if (depth > configured) {
          depths.add(depth);
        }
      }
    }
    depths.add(0);
    return depths;
  }

  private static InterruptedException cancelled(Throwable cause) {
    Thread.interrupted(); // Reported by the exception now, as blocking JDK methods do.
    InterruptedException e = new InterruptedException("the clone was cancelled");
    e.initCause(cause);
    return e;
  }

  /** Maps what JGit threw to a reason; JGit's messages are stable English texts (JGitText). */
  static CloneFailure classify(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof GuardedConnectionFactory.PathRefusedException) {
        return new CloneFailure(Reason.REDIRECTED_ELSEWHERE, t.getMessage(), e);
      }
      if (t instanceof GuardedConnectionFactory.OriginRefusedException
          || t instanceof TransportRefusedException) {
        return new CloneFailure(Reason.FAILED, t.getMessage(), e);
      }
      if (t instanceof NoRemoteRepositoryException) {
        return new CloneFailure(Reason.REPOSITORY_NOT_FOUND, "not found", e);
      }
      if (t instanceof UnknownHostException) {
        return new CloneFailure(Reason.UNREACHABLE, "unknown host", e);
      }
      if (t instanceof ConnectException || t instanceof NoRouteToHostException) {
        return new CloneFailure(Reason.UNREACHABLE, "connection refused", e);
      }
      if (t instanceof SocketTimeoutException) {
        return new CloneFailure(Reason.UNREACHABLE, "no answer in time", e);
      }
      if (t instanceof SSLException || t instanceof GeneralSecurityException) {
        return new CloneFailure(
            Reason.FAILED,
            "TLS with the server failed ("
                + innermost(t).getMessage()
                + "); the server must present a certificate that the worker's Java trust store"
                + " accepts",
            e);
      }
      String message = t.getMessage() == null ? "" : t.getMessage();
      if (message.contains("Authentication is required but no CredentialsProvider")) {
        return new CloneFailure(Reason.CREDENTIALS_MISSING, "credentials required", e);
      }
      if (message.contains("not authorized") || message.contains("authentication not supported")) {
        return new CloneFailure(Reason.CREDENTIALS_REFUSED, "not authorized", e);
      }
      if (message.contains(" not permitted on ")) {
        return new CloneFailure(Reason.FORBIDDEN, "forbidden", e);
      }
    }
    return new CloneFailure(Reason.FAILED, describe(e), e);
  }

  private static Throwable innermost(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t;
  }

  /** The distinct messages along the cause chain, outermost first. */
  private static String describe(Throwable e) {
    Set<String> messages = new LinkedHashSet<>();
    for (Throwable t = e; t != null; t = t.getCause()) {
      messages.add(t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage());
    }
    return String.join(": ", messages);
  }

  /** One clone's state: its connections, credentials and listener. */
  private final class Clone {
    private final CloneSpec spec;
    private final CloneListener listener;
    private final GuardedConnectionFactory connections;
    private final CredentialsProvider credentials;
    private final SizeLimit limit;
    private final ListenerProgressMonitor monitor;

    Clone(
        CloneSpec spec,
        CloneListener listener,
        GuardedConnectionFactory connections,
        SizeLimit limit)
        throws CloneFailure {
      this.spec = spec;
      this.listener = listener;
      this.connections = connections;
      this.limit = limit;
      this.monitor = new ListenerProgressMonitor(listener, limit::exceeded);
      URIish origin;
      try {
        origin = new URIish(spec.url().toString());
      } catch (URISyntaxException e) {
        throw new CloneFailure(Reason.FAILED, "JGit cannot read the URL: " + e.getMessage(), e);
      }
      this.credentials =
          spec.token().map(t -> new TokenCredentialsProvider(origin, t.reveal())).orElse(null);
    }

    CloneResult run()
        throws CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      // Always the server first, with the job's own token: what the branch or ref is now, and
      // whether this token may read the repository at all. Nothing stale, or fetched with
      // another token, is ever checked out from the cache.
      Map<String, Ref> refs = lsRemote();
      checkCancelled();
      if (cache != null && spec.useCache()) {
        Optional<CloneResult> mirrored = runMirrored(refs);
        if (mirrored.isPresent()) {
          return mirrored.get();
        }
      }
      return spec.exact() ? runExact(refs) : runBranch(refs);
    }

    private CloneResult runBranch(Map<String, Ref> refs)
        throws CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      String branch = resolveBranch(refs);
      checkCancelled();
      String ref = Constants.R_HEADS + branch;
      CloneCommand clone =
          Git.cloneRepository()
              .setURI(spec.url().toString())
              .setDirectory(spec.directory().toFile())
              .setBranch(ref)
              .setBranchesToClone(List.of(ref))
              .setCloneAllBranches(false)
              // Done below, once the files' size is known to fit the limit.
              .setNoCheckout(true)
              // Done below, once their URLs have been checked.
              .setCloneSubmodules(false)
              .setProgressMonitor(monitor);
      if (spec.depth() > 0) {
        clone.setDepth(spec.depth());
      }
      try (Git git = configure(clone).call()) {
        Repository repository = git.getRepository();
        ObjectId head = repository.resolve(Constants.HEAD + "^{commit}");
        if (head == null) {
          throw new CloneFailure(Reason.FAILED, "the clone has no HEAD commit", null);
        }
        checkout(repository, head, false);
        if (spec.submodules()) {
          cloneSubmodules(repository);
        }
        // The watcher looks every 100 ms; what the last moments wrote is checked here.
        limit.checkDisk();
        return new CloneResult(head.name(), branch, commitTime(repository, head));
      }
    }

    /**
     * Checks out {@code commit} into {@code repository}'s work tree, as {@code CloneCommand} and
     * {@code SubmoduleUpdateCommand} do, but only once the files' total size has been found to fit
     * the limit: JGit writes each file in one go, so a small pack that expands into huge files is
     * refused here before the first byte is written.
     */
    private void checkout(Repository repository, ObjectId commitId, boolean failOnConflict)
        throws IOException, InterruptedException {
      RevCommit commit;
      try (RevWalk walk = new RevWalk(repository)) {
        commit = walk.parseCommit(commitId);
      }
      limit.checkPlanned(filesSize(repository, commit.getTree()), commit.name());
      checkCancelled();
      DirCacheCheckout checkout =
          new DirCacheCheckout(repository, repository.lockDirCache(), commit.getTree());
      checkout.setFailOnConflict(failOnConflict);
      checkout.setProgressMonitor(monitor);
      checkout.checkout();
    }

    /**
     * The bytes that checking out {@code tree} writes: each path's blob size (a blob at many
     * paths is written many times), read from the object headers without inflating the blobs.
     * Counting stops once past the limit. Submodules are not counted: they are clones of their own,
     * checked the same way.
     */
    private long filesSize(Repository repository, RevTree tree)
        throws IOException, InterruptedException {
      long total = 0;
      long paths = 0;
      Map<ObjectId, Long> sizes = new HashMap<>();
      try (ObjectReader reader = repository.newObjectReader();
          TreeWalk walk = new TreeWalk(repository, reader)) {
        walk.addTree(tree);
        walk.setRecursive(true);
        while (walk.next() && total <= limit.maxBytes()) {
          if (walk.getFileMode(0).getObjectType() != Constants.OBJ_BLOB) {
            continue;
          }
          ObjectId id = walk.getObjectId(0);
          Long size = sizes.get(id);
          if (size == null) {
            size = reader.getObjectSize(id, Constants.OBJ_BLOB);
            sizes.put(id, size);
          }
          total += size;
          if (++paths % 4096 == 0) {
            checkCancelled();
          }
        }
      }
      return total;
    }

    // The mirror cache (see MirrorCache): the same clone, with the server asked only for what
    // the worker's mirror of the repository lacks, and the checkout made from the mirror.

    /**
     * The clone through the mirror of this URL and token, or empty when the cache cannot serve
     * it (the mirror stayed busy past lock-timeout, or it cannot be built): the caller then clones
     * from the server alone, as without a cache. The branch or ref is the one {@code refs}, the
     * server's answer just now, names: a missing one fails here, whatever the mirror holds.
     */
    private Optional<CloneResult> runMirrored(Map<String, Ref> refs)
        throws CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      String branch = spec.exact() ? "" : resolveBranch(refs);
      Optional<String> source =
          spec.exact() ? source(refs) : Optional.of(Constants.R_HEADS + branch);
      String key = MirrorCache.key(spec.url(), spec.token().map(t -> t.reveal()));
      long waitStart = System.nanoTime();
      MirrorLock lock;
      try {
        lock = cache.lock(key, listener::isCancelled);
      } catch (IOException e) {
        listener.log("cannot lock the worker's mirror of this repository (" + e.getMessage()
            + "); cloning without it");
        return Optional.empty();
      }
      if (lock == null) {
        listener.log("another job has held the worker's mirror of this repository for longer than"
            + " cache.lock-timeout; cloning without it");
        return Optional.empty();
      }
      Optional<CloneResult> result = Optional.empty();
      try (lock) {
        long waited = millis(waitStart);
        if (waited >= 100) {
          listener.log("waited " + waited + " ms for the worker's mirror of this repository,"
              + " which another job was using");
        }
        if (readyCheckouts && spec.commitSha().isEmpty()) {
          result = fromReady(key, branch, source.orElseThrow(), refs);
        }
        if (result.isEmpty()) {
          result = mirrored(key, branch, source, refs);
        }
        if (result.isPresent()) {
          cache.touch(key);
        }
      }
      // Once released, so that eviction may take even this mirror if it alone is too large.
      cache.evict(listener::log);
      if (repack) {
        repackLater(key);
      }
      // Not for a repository seen the first time: most are cloned once (the benchmark's cold
      // rounds, a one-off job), and the checkout made for nobody would only compete with what
      // runs next. From the second clone on, a third is likely.
      if (result.isPresent() && served != null && !madeMirror && spec.commitSha().isEmpty()) {
        prepareAfterJob(spec.directory(), new Prepare(key, spec.url(), branch,
            source.orElseThrow(), spec.depth(), served, spec.maxCheckoutSize()));
      }
      return result;
    }

    /** The branch's or ref's tip object that this clone checked out, for a ready checkout. */
    private ObjectId served;

    /** Whether this clone made the mirror it used: the repository is new to the cache. */
    private boolean madeMirror;

    /**
     * The ready checkout of exactly the tip the server named, moved into the workspace; empty
     * when there is none (or it cannot be moved), and the clone goes on from the mirror.
     */
    private Optional<CloneResult> fromReady(
        String key, String branch, String ref, Map<String, Ref> refs)
        throws CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      ObjectId tip = refs.get(ref).getObjectId();
      Optional<ReadyCheckouts.Ready> ready = ReadyCheckouts.find(cache.readyDir(key),
          ReadyCheckouts.shape(branch, ref, spec.depth()), tip);
      if (ready.isEmpty() || ready.get().bytes() > spec.maxCheckoutSize()) {
        return Optional.empty();
      }
      long start = System.nanoTime();
      Path target = spec.directory();
      if (!take(ready.get(), target)) {
        return Optional.empty();
      }
      ObjectId commit = null;
      try (Repository repository = new FileRepositoryBuilder()
          .setGitDir(target.resolve(Constants.DOT_GIT).toFile()).setMustExist(true).build()) {
        commit = repository.resolve(Constants.HEAD + "^{commit}");
        if (commit != null && (!repository.getObjectDatabase().has(tip)
            || !commit.equals(repository.resolve(tip.name() + "^{commit}")))) {
          commit = null;
        }
      } catch (IOException | RuntimeException e) {
        commit = null;
      }
      if (commit == null) {
        emptyCheckout(); // not what its name says: the clone goes on as if there were none
        return Optional.empty();
      }
      Optional<java.time.Instant> time;
      try (Repository repository = new FileRepositoryBuilder()
          .setGitDir(target.resolve(Constants.DOT_GIT).toFile()).setMustExist(true).build()) {
        writeCheckoutConfig(repository, spec.url(), branch, Optional.of(ref));
        listener.log("took the checkout of " + commit.name() + " that the worker had ready ("
            + Sizes.format(ready.get().bytes()) + ") in " + millis(start) + " ms");
        if (spec.submodules()) {
          cloneSubmodules(repository);
        }
        limit.checkDisk();
        time = commitTime(repository, commit);
      }
      served = tip;
      return Optional.of(new CloneResult(commit.name(),
          branch.isEmpty() ? ref + " (detached HEAD)" : branch, time));
    }

    /** Whether the mirror just used has so many packs that it should be repacked. */
    private boolean repack;

    /** {@link #fromMirror}, once more from a new mirror when the one there was damaged. */
    private Optional<CloneResult> mirrored(
        String key, String branch, Optional<String> source, Map<String, Ref> refs)
        throws CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      for (int attempt = 1; ; attempt++) {
        try {
          return Optional.of(fromMirror(key, branch, source, refs));
        } catch (MirrorDamaged e) {
          checkCancelled();
          emptyCheckout();
          limit.restart();
          cache.discard(cache.mirror(key));
          cache.discard(cache.readyDir(key));
          if (attempt > 1) {
            listener.log("the rebuilt mirror failed too (" + e.getMessage()
                + "); cloning without it");
            return Optional.empty();
          }
          listener.log("the worker's mirror of this repository is damaged (" + e.getMessage()
              + "); removed it, rebuilding it from the server");
        } catch (NoMirror e) {
          emptyCheckout();
          listener.log(e.getMessage() + "; cloning without the worker's mirror");
          return Optional.empty();
        }
      }
    }

    /** What to check out, found in the mirror. */
    private record Wanted(ObjectId object, ObjectId commit, String localRef, String checkedOut) {}

    /**
     * Brings the mirror up to what the server said (creating it when there is none), then makes
     * the checkout from it.
     *
     * @throws MirrorDamaged when the mirror there cannot be read or updated: it is rebuilt
     */
    private CloneResult fromMirror(
        String key, String branch, Optional<String> source, Map<String, Ref> refs)
        throws MirrorDamaged, NoMirror, CloneFailure, GitAPIException, IOException,
            ConfigInvalidException, InterruptedException {
      Path dir = cache.mirror(key);
      Path temp = null;
      if (!MirrorCache.isMirror(dir)) {
        if (Files.exists(dir)) {
          listener.log("the worker's mirror of this repository is not a whole git repository;"
              + " removed it");
          cache.discard(dir);
        }
        temp = cache.newTemp(key);
        // Noted first, so that a worker that dies now leaves nothing behind for long.
        if (!listener.recordLeftover(MirrorCache.LEFTOVER + temp)) {
          throw new NoMirror("could not note the new mirror for clean-up after a crash");
        }
        initMirror(temp);
      }
      boolean fresh = temp != null;
      Repository mirror = openMirror(fresh ? temp : dir, fresh);
      try {
        long start = System.nanoTime();
        Wanted wanted;
        try (Git git = Git.wrap(mirror)) {
          wanted = spec.commitSha().isEmpty()
              ? updateForRef(git, fresh, branch, source.orElseThrow(), refs)
              : updateForCommit(git, fresh, source, refs);
        } catch (IOException | JGitInternalException e) {
          // Reading the mirror (its refs, its objects) failed; the server's failures that come
          // as IOExceptions have a reason of their own and fail the clone as without the cache.
          if (fresh || listener.isCancelled() || limit.exceeded() || refused(e)
              || classify(e).reason() != Reason.FAILED) {
            throw e;
          }
          throw new MirrorDamaged(describe(e), e);
        }
        if (fresh) {
          listener.log("made the worker's mirror of this repository in " + millis(start) + " ms");
          mirror.close();
          cache.install(temp, key);
          temp = null;
          mirror = openMirror(dir, true);
        }
        repack = MirrorObjects.packCount(mirror) > REPACK_PACKS;
        Optional<CloneResult> updated = fresh ? Optional.empty()
            : fromOlderReady(mirror, key, wanted, branch, source);
        CloneResult result = updated.isPresent() ? updated.get()
            : checkoutFromMirror(mirror, fresh, wanted, branch, source);
        served = wanted.object();
        madeMirror = fresh;
        return result;
      } finally {
        mirror.close();
        if (temp != null) {
          cache.discard(temp); // never complete: nobody may take it for a mirror
        }
      }
    }

    /** A branch's or ref's tip, from the mirror when it has it, else fetched into it. */
    private Wanted updateForRef(
        Git git, boolean fresh, String branch, String ref, Map<String, Ref> refs)
        throws MirrorDamaged, CloneFailure, GitAPIException, IOException, InterruptedException {
      Repository mirror = git.getRepository();
      ObjectId tip = refs.get(ref).getObjectId();
      String local = localName(ref);
      String what = branch.isEmpty() ? "ref " + ref : "branch " + branch;
      if (!fresh && held(mirror, tip)) {
        setRef(mirror, local, tip, true);
        listener.log("the worker's mirror has " + what + " at " + tip.name()
            + " already; nothing to fetch");
      } else {
        long start = System.nanoTime();
        fetchIntoMirror(fresh, () -> {
          fetch(git, refSpec(ref), spec.depth());
          return null;
        });
        Ref fetched = mirror.exactRef(local);
        if (fetched == null || fetched.getObjectId() == null) {
          throw new CloneFailure(Reason.FAILED, "the server sent no " + ref, null);
        }
        tip = fetched.getObjectId();
        if (!fresh) {
          listener.log("fetched what is new of " + what + " into the worker's mirror in "
              + millis(start) + " ms");
        }
      }
      ObjectId commit = commitOf(mirror, tip.name());
      if (commit == null) {
        throw new CloneFailure(
            Reason.COMMIT_NOT_FOUND, "it points to a tree or blob, not a commit", null);
      }
      return new Wanted(tip, commit, local, branch.isEmpty() ? ref + " (detached HEAD)" : branch);
    }

    /**
     * Exactly {@code commit_sha}: from the mirror when it holds the commit at the job's depth
     * (this token fetched it before, and may read the repository now), else fetched into the
     * mirror as {@link #fetchCommit} fetches it into a new repository.
     */
    private Wanted updateForCommit(
        Git git, boolean fresh, Optional<String> source, Map<String, Ref> refs)
        throws MirrorDamaged, CloneFailure, GitAPIException, IOException, InterruptedException {
      Repository mirror = git.getRepository();
      ObjectId commit = ObjectId.fromString(spec.commitSha());
      String sha = commit.name();
      if (source.isPresent() && commit.equals(peeled(refs.get(source.get())))) {
        String ref = source.get();
        String local = localName(ref);
        ObjectId tip = refs.get(ref).getObjectId();
        if (!fresh && held(mirror, tip)) {
          setRef(mirror, local, tip, true);
        } else {
          fetchIntoMirror(fresh, () -> {
            fetch(git, refSpec(ref), spec.depth());
            return null;
          });
          Ref fetched = mirror.exactRef(local);
          tip = fetched == null ? null : fetched.getObjectId();
        }
        requireCommit(mirror, commit);
        // The ref moved on since ls-remote: the commit alone, without the ref.
        boolean atTip = tip != null && commit.equals(commitOf(mirror, tip.name()));
        return new Wanted(atTip ? tip : commit, commit, atTip ? local : null,
            "commit " + sha + ", the tip of " + where(source) + " (detached HEAD)");
      }
      if (!fresh && held(mirror, commit) && isCommit(mirror, commit)) {
        listener.log("the worker's mirror has commit " + sha + " already; nothing to fetch");
        return new Wanted(commit, commit, null,
            "commit " + sha + " (from the worker's mirror, detached HEAD)");
      }
      String checkedOut = fetchIntoMirror(fresh, () -> fetchCommit(git, commit, refs, source));
      return new Wanted(commit, commit, null, checkedOut);
    }

    /** A fetch into the mirror, whose failures of unclear cause mean a damaged mirror. */
    private interface MirrorFetch<T> {
      T run() throws CloneFailure, GitAPIException, IOException, InterruptedException;
    }

    private <T> T fetchIntoMirror(boolean fresh, MirrorFetch<T> fetch)
        throws MirrorDamaged, CloneFailure, GitAPIException, IOException, InterruptedException {
      try {
        return fetch.run();
      } catch (GitAPIException | JGitInternalException | IOException e) {
        // The server's answers (credentials, 404, the network, refusals), cancellation and the
        // limit fail the clone as without the cache; a new mirror cannot be damaged.
        if (fresh || listener.isCancelled() || limit.exceeded() || refused(e)
            || classify(e).reason() != Reason.FAILED) {
          throw e;
        }
        throw new MirrorDamaged("a fetch into it failed: " + describe(e), e);
      }
    }

    /** Whether {@code e} is a refusal of the clone's own rules, which no new mirror changes. */
    private boolean refused(Throwable e) {
      for (Throwable t = e; t != null; t = t.getCause()) {
        if (isRuleRefusal(t)) {
          return true;
        }
      }
      return false;
    }

    /** A refused redirect or transport, or TLS that failed: the clone's rules said no. */
    private static boolean isRuleRefusal(Throwable t) {
      return t instanceof GuardedConnectionFactory.PathRefusedException
          || t instanceof GuardedConnectionFactory.OriginRefusedException
          || t instanceof TransportRefusedException
          || t instanceof SSLException
          || t instanceof GeneralSecurityException;
    }

    /** {@link MirrorObjects#hasHistory}, with a mirror that cannot be read reported as damaged. */
    private boolean held(Repository mirror, ObjectId id) throws MirrorDamaged {
      try {
        return MirrorObjects.hasHistory(mirror, id, spec.depth());
      } catch (IOException | RuntimeException e) {
        throw new MirrorDamaged("reading " + id.name() + " failed: " + describe(e), e);
      }
    }

    private static boolean isCommit(Repository repository, ObjectId id) throws MirrorDamaged {
      try (ObjectReader reader = repository.newObjectReader()) {
        return reader.open(id).getType() == Constants.OBJ_COMMIT;
      } catch (IOException e) {
        throw new MirrorDamaged("reading " + id.name() + " failed: " + describe(e), e);
      }
    }

    private static void setRef(Repository repository, String name, ObjectId id, boolean mirror)
        throws MirrorDamaged, IOException {
      RefUpdate update = repository.updateRef(name);
      update.setNewObjectId(id);
      update.setForceUpdate(true);
      RefUpdate.Result result = update.forceUpdate();
      switch (result) {
        case NEW, FORCED, NO_CHANGE, FAST_FORWARD -> {}
        default -> {
          String message = "cannot set " + name + " to " + id.name() + ": " + result;
          if (mirror) {
            throw new MirrorDamaged(message, null);
          }
          throw new IOException(message);
        }
      }
    }

    /** A new bare mirror at {@code dir}: the URL as its origin (never a token), no auto-gc. */
    private void initMirror(Path dir) throws GitAPIException, IOException {
      try (Git git = Git.init().setBare(true).setDirectory(dir.toFile()).call()) {
        StoredConfig config = git.getRepository().getConfig();
        config.setString("remote", "origin", "url", spec.url().toString());
        // JGit would start a gc of its own after fetches, on a thread that holds no lock; the
        // stage repacks under the mirror's lock instead.
        config.setBoolean("fetch", null, "autogc", false);
        config.setInt("gc", null, "auto", 0);
        config.setInt("gc", null, "autopacklimit", 0);
        // The stage's repack holds the mirror's lock: packs it replaces may go at once.
        config.setString("gc", null, "prunePackExpire", "now");
        config.save();
      }
      MirrorCache.describe(dir, MirrorCache.normalise(spec.url()), spec.token().isPresent());
    }

    private static Repository openMirror(Path dir, boolean fresh)
        throws MirrorDamaged, IOException {
      try {
        return new FileRepositoryBuilder().setGitDir(dir.toFile()).setMustExist(true).build();
      } catch (IOException | RuntimeException e) {
        if (fresh) {
          throw e;
        }
        throw new MirrorDamaged("opening it failed: " + describe(e), e);
      }
    }

    /**
     * The checkout, a repository of its own in {@code <workspace>/src}: its objects from the
     * mirror ({@link MirrorObjects}), its config and refs as a clone would have written them,
     * then the same checkout as without the cache, held to the same size limit.
     */
    private CloneResult checkoutFromMirror(
        Repository mirror, boolean fresh, Wanted wanted, String branch, Optional<String> source)
        throws MirrorDamaged, CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      checkCancelled();
      InitCommand init = Git.init().setDirectory(spec.directory().toFile());
      if (!branch.isEmpty()) {
        init.setInitialBranch(branch);
      }
      init.call().close();
      Path gitDir = spec.directory().resolve(Constants.DOT_GIT);
      long start = System.nanoTime();
      long bytes;
      try {
        bytes = fresh
            ? MirrorObjects.linkObjects(mirror, gitDir, this::beforeCopy)
            : MirrorObjects.writePack(mirror, wanted.object(), spec.depth(), gitDir,
                MirrorObjects.stopping(monitor, this::mustStop), this::beforeCopy);
      } catch (MirrorObjects.Stopped e) {
        checkCancelled();
        throw limit.failure(e);
      } catch (IOException e) {
        if (listener.isCancelled() || limit.exceeded()
            || e instanceof MirrorObjects.WorkspaceWriteException) {
          throw e;
        }
        throw new MirrorDamaged("copying its objects failed: " + describe(e), e);
      }
      listener.log((fresh ? "linked" : "copied") + " the checkout's objects ("
          + Sizes.format(bytes) + ") from the worker's mirror in " + millis(start) + " ms");
      try (Repository repository =
          new FileRepositoryBuilder().setGitDir(gitDir.toFile()).setMustExist(true).build()) {
        writeCheckoutConfig(repository, spec.url(), branch, source);
        pointRefs(repository, wanted, branch);
        checkout(repository, wanted.commit(), false);
        if (spec.submodules()) {
          cloneSubmodules(repository);
        }
        limit.checkDisk();
        return new CloneResult(wanted.commit().name(), wanted.checkedOut(),
            commitTime(repository, wanted.commit()));
      }
    }

    /**
     * A ready checkout of an older commit of the same branch or ref, at depth 1, brought up to
     * the wanted commit, as {@code git fetch} and {@code git checkout} would in a kept workspace:
     * its objects written afresh from the mirror (exactly a depth-1 clone's, so nothing of the old
     * commit stays in {@code .git}: a file deleted by the new commit is gone from the workspace
     * as it would be from a new clone), and of its files only the paths that differ
     * ({@link TreeUpdate}). This is a changed-file job's clone: most of a checkout's time is
     * writing the files. Empty, with nothing taken, when there is none, when the trees have
     * attributes or submodules, or when the old commit is gone from the mirror; empty after
     * taking it when it is not what its name says or the update fails: the whole checkout from
     * the mirror follows, on a limit counted afresh.
     */
    private Optional<CloneResult> fromOlderReady(Repository mirror, String key, Wanted wanted,
        String branch, Optional<String> source)
        throws MirrorDamaged, CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      if (!readyCheckouts || spec.depth() != 1 || !spec.commitSha().isEmpty()
          || source.isEmpty() || wanted.localRef() == null) {
        return Optional.empty();
      }
      String shape = ReadyCheckouts.shape(branch, source.get(), spec.depth());
      Optional<ReadyCheckouts.Ready> older = ReadyCheckouts.list(cache.readyDir(key)).stream()
          .filter(r -> r.shape().equals(shape) && !r.commit().equals(wanted.object()))
          .findFirst();
      if (older.isEmpty() || older.get().bytes() > spec.maxCheckoutSize()) {
        return Optional.empty();
      }
      long start = System.nanoTime();
      RevCommit from;
      RevCommit to;
      Optional<TreeUpdate.Plan> plan;
      try (RevWalk walk = new RevWalk(mirror)) {
        from = walk.parseCommit(older.get().commit());
        to = walk.parseCommit(wanted.commit());
        // Decided on the mirror, before anything is taken: it holds both trees.
        plan = TreeUpdate.plan(mirror, from.getTree(), to.getTree());
      } catch (IOException e) {
        return Optional.empty(); // the old commit is gone from the mirror (a force-push, a repack)
      }
      if (plan.isEmpty()) {
        return Optional.empty();
      }
      Path target = spec.directory();
      if (!take(older.get(), target)) {
        return Optional.empty();
      }
      Path gitDir = target.resolve(Constants.DOT_GIT);
      long bytes;
      try {
        try (Repository old = new FileRepositoryBuilder().setGitDir(gitDir.toFile())
            .setMustExist(true).build()) {
          ObjectId head = old.resolve(Constants.HEAD + "^{commit}");
          if (head == null || !head.equals(from)) {
            return giveUp(); // not what its name says
          }
        }
        MirrorObjects.removeObjects(gitDir);
        bytes = MirrorObjects.writePack(mirror, wanted.object(), 1, gitDir,
            MirrorObjects.stopping(monitor, this::mustStop), this::beforeCopy);
      } catch (MirrorObjects.Stopped e) {
        checkCancelled();
        throw limit.failure(e);
      } catch (IOException e) {
        if (listener.isCancelled() || limit.exceeded()) {
          throw e;
        }
        return giveUp();
      }
      try (Repository repository = new FileRepositoryBuilder().setGitDir(gitDir.toFile())
          .setMustExist(true).build()) {
        // The files it writes on top of what is there; the old versions of those paths are
        // counted too, so this errs on the side of the limit.
        limit.checkPlanned(plan.get().bytes(), to.name());
        checkCancelled();
        writeCheckoutConfig(repository, spec.url(), branch, source);
        pointRefs(repository, wanted, branch);
        // The ref updates logged the old commit, which is gone: no reflog names it.
        MirrorCache.deleteTree(gitDir.resolve(Constants.LOGS));
        try {
          TreeUpdate.apply(repository, plan.get(), this::mustStop);
        } catch (IOException | RuntimeException e) {
          if (listener.isCancelled() || limit.exceeded()) {
            checkCancelled();
            throw limit.failure(e);
          }
          return giveUp();
        }
        listener.log("brought the worker's ready checkout of " + from.name() + " up to "
            + to.name() + ": " + Sizes.format(bytes) + " of objects written from the worker's"
            + " mirror, " + plan.get().paths() + " file(s) written or removed, in "
            + millis(start) + " ms");
        limit.checkDisk();
        return Optional.of(new CloneResult(to.name(), wanted.checkedOut(),
            commitTime(repository, to)));
      }
    }

    /**
     * Moves a ready checkout into the job's (empty) checkout directory; false when another job
     * took it first, or when the cache is on another file system, after which none is made.
     */
    private boolean take(ReadyCheckouts.Ready ready, Path target) {
      try {
        if (Files.isDirectory(target)) {
          Files.delete(target); // empty, as a clone's directory must be
        }
        Files.move(ready.dir(), target, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        return true;
      } catch (java.nio.file.AtomicMoveNotSupportedException e) {
        readyCheckouts = false;
        listener.log("cache.dir is on another file system than the workspace, so ready"
            + " checkouts cannot be moved into it; they are not made any more");
        return false;
      } catch (IOException e) {
        return false;
      }
    }

    /** Empties the checkout for the whole one from the mirror, whose limit starts afresh. */
    private Optional<CloneResult> giveUp() throws IOException {
      emptyCheckout();
      limit.restart();
      return Optional.empty();
    }

    /**
     * Points a checkout's refs at what it holds: the remote-tracking ref (or the ref itself) at
     * the fetched object, the branch at the commit, HEAD on the branch or, without one, detached
     * at the commit.
     */
    private static void pointRefs(Repository repository, Wanted wanted, String branch)
        throws MirrorDamaged, IOException {
      if (wanted.localRef() != null) {
        setRef(repository, wanted.localRef(), wanted.object(), false);
      }
      if (!branch.isEmpty()) {
        setRef(repository, Constants.R_HEADS + branch, wanted.commit(), false);
      } else {
        RefUpdate head = repository.updateRef(Constants.HEAD, true);
        head.setNewObjectId(wanted.commit());
        head.forceUpdate();
      }
    }

    private void beforeCopy(long bytes) throws IOException {
      if (listener.isCancelled()) {
        throw MirrorObjects.interrupted();
      }
      limit.copied(bytes);
    }

    private boolean mustStop() {
      return listener.isCancelled() || limit.exceeded();
    }

    /** Removes what a failed attempt wrote, so that the next starts from an empty directory. */
    private void emptyCheckout() throws IOException {
      MirrorCache.deleteTree(spec.directory());
    }

    /** The remote's refs by name, HEAD included: {@code git ls-remote URL}. */
    private Map<String, Ref> lsRemote() throws GitAPIException {
      return configure(Git.lsRemoteRepository().setRemote(spec.url().toString())).callAsMap();
    }

    /** The branch to clone: the one asked for, which must exist, or the remote's default. */
    private String resolveBranch(Map<String, Ref> refs) throws CloneFailure {
      List<String> branches = new ArrayList<>(new TreeSet<>(branchNames(refs)));
      if (!spec.branch().isEmpty()) {
        if (refs.containsKey(Constants.R_HEADS + spec.branch())) {
          return spec.branch();
        }
        throw new CloneFailure(Reason.BRANCH_NOT_FOUND, existing(branches), null);
      }
      return defaultBranch(refs, branches)
          .orElseThrow(
              () ->
                  new CloneFailure(
                      Reason.BRANCH_NOT_FOUND,
                      "the repository may be empty; " + existing(branches),
                      null));
    }

    /**
     * A ref's tip or an exact commit, as a detached HEAD in a new repository: {@code git init},
     * {@code git fetch} of only what is needed, then the checkout (held to the size limit as a
     * branch's is) and the submodules.
     */
    private CloneResult runExact(Map<String, Ref> refs)
        throws CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      Optional<String> source = source(refs);
      checkCancelled();
      try (Git git = Git.init().setDirectory(spec.directory().toFile()).call()) {
        Repository repository = git.getRepository();
        StoredConfig config = repository.getConfig();
        config.setString("remote", "origin", "url", spec.url().toString());
        if (source.isPresent()) {
          config.setString("remote", "origin", "fetch", refSpec(source.get()).toString());
        }
        config.save();
        ObjectId commit;
        String checkedOut;
        if (spec.commitSha().isEmpty()) {
          String ref = source.orElseThrow(); // source() threw when the ref does not exist
          fetch(git, refSpec(ref), spec.depth());
          commit = commitOf(repository, localName(ref));
          if (commit == null) {
            throw new CloneFailure(
                Reason.COMMIT_NOT_FOUND, "it points to a tree or blob, not a commit", null);
          }
          checkedOut = ref + " (detached HEAD)";
        } else {
          commit = ObjectId.fromString(spec.commitSha());
          checkedOut = fetchCommit(git, commit, refs, source);
        }
        checkCancelled();
        checkout(repository, commit, false);
        RefUpdate head = repository.updateRef(Constants.HEAD, true);
        head.setNewObjectId(commit);
        head.forceUpdate();
        if (spec.submodules()) {
          cloneSubmodules(repository);
        }
        limit.checkDisk();
        return new CloneResult(commit.name(), checkedOut, commitTime(repository, commit));
      }
    }

    /**
     * The full name of the ref to fetch, or to search for the commit: the ref asked for, the
     * branch asked for, else the remote's default branch. Empty when there is none; a missing ref
     * fails here unless a commit was asked for, whose fetch by id needs no ref.
     */
    private Optional<String> source(Map<String, Ref> refs) throws CloneFailure {
      boolean commit = !spec.commitSha().isEmpty();
      if (!spec.ref().isEmpty()) {
        if (refs.containsKey(spec.ref())) {
          return Optional.of(spec.ref());
        }
        if (commit) {
          return Optional.empty();
        }
        throw new CloneFailure(Reason.BRANCH_NOT_FOUND, existingRefs(refs, spec.ref()), null);
      }
      if (!spec.branch().isEmpty()) {
        String ref = Constants.R_HEADS + spec.branch();
        return refs.containsKey(ref) ? Optional.of(ref) : Optional.empty();
      }
      return defaultBranch(refs, new ArrayList<>(new TreeSet<>(branchNames(refs))))
          .map(b -> Constants.R_HEADS + b);
    }

    /** Where the commit is looked for, in words: {@code branch 'main' (the default branch)}. */
    private String where(Optional<String> source) {
      if (!spec.ref().isEmpty()) {
        return "ref '" + spec.ref() + "'";
      }
      if (!spec.branch().isEmpty()) {
        return "branch '" + spec.branch() + "'";
      }
      return source
          .map(s -> "branch '" + s.substring(Constants.R_HEADS.length()) + "' (the default branch)")
          .orElse("the default branch");
    }

    /**
     * Fetches exactly {@code commit}: with its ref when it is the tip of the branch or ref, else by
     * its id, else, when the server will not send it by id, by searching the history of the branch
     * or ref for it.
     *
     * @return what was checked out, for the log
     */
    private String fetchCommit(
        Git git, ObjectId commit, Map<String, Ref> refs, Optional<String> source)
        throws CloneFailure, GitAPIException, IOException, InterruptedException {
      String sha = commit.name();
      String where = where(source);
      if (source.isPresent() && commit.equals(peeled(refs.get(source.get())))) {
        fetch(git, refSpec(source.get()), spec.depth());
        requireCommit(git.getRepository(), commit);
        return "commit " + sha + ", the tip of " + where + " (detached HEAD)";
      }
      long start = System.nanoTime();
      String refusal;
      try {
        fetch(git, new RefSpec(sha), spec.depth());
        refusal = null;
      } catch (GitAPIException | JGitInternalException e) {
        Optional<String> refused = refusal(e);
        if (refused.isEmpty()) {
          throw e;
        }
        refusal = refused.get();
      }
      if (refusal == null) {
        requireCommit(git.getRepository(), commit);
        listener.log("fetched commit " + sha + " by id in " + millis(start) + " ms");
        return "commit " + sha + " (fetched by id, detached HEAD)";
      }
      listener.log(
          "the server would not send commit "
              + sha
              + " by id ("
              + refusal
              + ", "
              + millis(start)
              + " ms); looking for it in the history of "
              + where);
      checkCancelled();
      if (source.isEmpty()) {
        String missing =
            !spec.ref().isEmpty()
                ? where + " does not exist (" + existingRefs(refs, spec.ref()) + ")"
                : !spec.branch().isEmpty()
                    ? where
                        + " does not exist ("
                        + existing(new ArrayList<>(new TreeSet<>(branchNames(refs))))
                        + ")"
                    : "the repository has no default branch to look in";
        throw new CloneFailure(
            Reason.COMMIT_NOT_FOUND,
            "the server would not send it by id (" + refusal + "), and " + missing,
            null);
      }
      return search(git, commit, source.get(), where, refusal);
    }

    /**
     * Fetches {@code ref} deeper and deeper ({@link #searchDepths}) until its history holds
     * {@code commit}, or is complete without it.
     */
    private String search(Git git, ObjectId commit, String ref, String where, String refusal)
        throws CloneFailure, GitAPIException, IOException, InterruptedException {
      Repository repository = git.getRepository();
      String sha = commit.name();
      long searchStart = System.nanoTime();
      for (int depth : searchDepths(spec.depth())) {
        checkCancelled();
        long start = System.nanoTime();
        boolean shallow = !repository.getObjectDatabase().getShallowCommits().isEmpty();
        if (depth == 0 && shallow) {
          configure(fetchCommand(git, refSpec(ref)).setUnshallow(true)).call();
        } else {
          fetch(git, refSpec(ref), depth);
        }
        ObjectId tip = commitOf(repository, localName(ref));
        boolean whole = repository.getObjectDatabase().getShallowCommits().isEmpty();
        String fetched = whole ? "its whole history" : depth + " commits";
        if (tip != null && reachable(repository, commit, tip)) {
          listener.log(
              "found commit "
                  + sha
                  + " in "
                  + where
                  + " ("
                  + fetched
                  + " fetched) in "
                  + millis(start)
                  + " ms");
          return "commit " + sha + " (found in the history of " + where + ", detached HEAD)";
        }
        listener.log(
            "commit " + sha + " is not in " + fetched + " of " + where + " (" + millis(start)
                + " ms)");
        if (whole) {
          throw new CloneFailure(
              Reason.COMMIT_NOT_FOUND,
              "the server would not send it by id ("
                  + refusal
                  + "), and it is not in the history of "
                  + where
                  + " (all "
                  + (tip == null ? 0 : countCommits(repository, tip))
                  + " commits searched in "
                  + millis(searchStart)
                  + " ms); check commit_sha, and name the branch or ref that holds it",
              null);
        }
      }
      throw new IllegalStateException("the last search depth fetches the whole history");
    }

    /**
     * Why the server did not send what a fetch asked for, when it answered and simply would not
     * (git's {@code upload-pack: not our ref}, JGit's {@code want ... not valid}, or another
     * protocol-level refusal); empty for failures a fallback cannot help with: credentials, a
     * missing repository, the network, a refused redirect or transport, cancellation, the limit.
     */
    private Optional<String> refusal(Exception e) {
      if (listener.isCancelled() || limit.exceeded()) {
        return Optional.empty();
      }
      boolean transport = false;
      for (Throwable t = e; t != null; t = t.getCause()) {
        if (isRuleRefusal(t)) {
          return Optional.empty();
        }
        transport |= t instanceof org.eclipse.jgit.errors.TransportException;
      }
      if (!transport || classify(e).reason() != Reason.FAILED) {
        return Optional.empty();
      }
      String message = innermost(e).getMessage() == null ? describe(e) : innermost(e).getMessage();
      // JGit puts the URL first; the stage's message names it already.
      String url = spec.url() + ": ";
      return Optional.of(message.startsWith(url) ? message.substring(url.length()) : message);
    }

    /** Fails unless the repository now has {@code id} and it is a commit. */
    private static void requireCommit(Repository repository, ObjectId id)
        throws CloneFailure, IOException {
      try (ObjectReader reader = repository.newObjectReader()) {
        if (!reader.has(id)) {
          throw new CloneFailure(
              Reason.COMMIT_NOT_FOUND, "the server's answer did not include it", null);
        }
        int type = reader.open(id).getType();
        if (type != Constants.OBJ_COMMIT) {
          throw new CloneFailure(
              Reason.COMMIT_NOT_FOUND,
              "it names a " + Constants.typeString(type) + ", not a commit; give a commit's id",
              null);
        }
      }
    }

    /** Whether {@code commit} is {@code tip} or one of its ancestors, as far as history was fetched. */
    private static boolean reachable(Repository repository, ObjectId commit, ObjectId tip)
        throws IOException {
      if (!repository.getObjectDatabase().has(commit)) {
        return false;
      }
      try (RevWalk walk = new RevWalk(repository)) {
        RevObject object = walk.parseAny(commit);
        return object instanceof RevCommit c && walk.isMergedInto(c, walk.parseCommit(tip));
      }
    }

    private static long countCommits(Repository repository, ObjectId tip) throws IOException {
      try (RevWalk walk = new RevWalk(repository)) {
        walk.markStart(walk.parseCommit(tip));
        long count = 0;
        while (walk.next() != null) {
          count++;
        }
        return count;
      }
    }

    private void fetch(Git git, RefSpec refSpec, int depth) throws GitAPIException, IOException {
      Repository repository = git.getRepository();
      boolean shallow = !MirrorObjects.complete(repository);
      // A mirror that has its whole history keeps it: only what is new comes, and no fetch
      // makes it shallow for the jobs that want all of it.
      if (repository.isBare() && !shallow && !repository.getRefDatabase().getRefs().isEmpty()) {
        depth = 0;
      }
      FetchCommand fetch = fetchCommand(git, refSpec);
      if (depth > 0) {
        fetch.setDepth(depth);
      } else if (shallow) {
        fetch.setUnshallow(true);
      }
      configure(fetch).call();
    }

    private FetchCommand fetchCommand(Git git, RefSpec refSpec) {
      return git.fetch().setRemote("origin").setRefSpecs(refSpec).setProgressMonitor(monitor);
    }

    /**
     * The commit a local ref names, peeled; null when it names a tree or blob (git's own
     * repository has {@code refs/tags/v2.6.11-tree}), or nothing.
     */
    private static ObjectId commitOf(Repository repository, String ref) throws IOException {
      try {
        return repository.resolve(ref + "^{commit}");
      } catch (IncorrectObjectTypeException e) {
        return null;
      }
    }

    /** The object a ref names, peeled: an annotated tag's commit. */
    private static ObjectId peeled(Ref ref) {
      return ref.getPeeledObjectId() != null ? ref.getPeeledObjectId() : ref.getObjectId();
    }

    /**
     * Where a fetched ref is kept: a branch as {@code refs/remotes/origin/<branch>}, as a clone
     * keeps it; any other ref ({@code refs/tags/v1}, {@code refs/pull/42/merge}) under its own name.
     */
    static String localName(String ref) {
      return ref.startsWith(Constants.R_HEADS)
          ? Constants.R_REMOTES + "origin/" + ref.substring(Constants.R_HEADS.length())
          : ref;
    }

    static RefSpec refSpec(String ref) {
      return new RefSpec("+" + ref + ":" + localName(ref));
    }

    private static String existingRefs(Map<String, Ref> refs, String ref) {
      int slash = ref.indexOf('/', Constants.R_REFS.length());
      String prefix = slash < 0 ? Constants.R_REFS : ref.substring(0, slash + 1);
      List<String> names = new ArrayList<>(new TreeSet<>(refs.keySet()));
      names.removeIf(n -> !n.startsWith(prefix));
      if (names.isEmpty()) {
        return "it has no refs under " + prefix;
      }
      int shown = Math.min(names.size(), 20);
      return "existing refs under "
          + prefix
          + ": "
          + names.subList(0, shown)
          + (names.size() > shown ? " and " + (names.size() - shown) + " more" : "");
    }

    private static long millis(long start) {
      return (System.nanoTime() - start) / 1_000_000;
    }

    private static Optional<String> defaultBranch(Map<String, Ref> refs, List<String> branches) {
      Ref head = refs.get(Constants.HEAD);
      if (head == null) {
        return Optional.empty();
      }
      if (head.isSymbolic()) {
        String target = head.getTarget().getName();
        return target.startsWith(Constants.R_HEADS) && refs.containsKey(target)
            ? Optional.of(target.substring(Constants.R_HEADS.length()))
            : Optional.empty();
      }
      // A server that does not say where HEAD points: take a branch at the same commit.
      ObjectId id = head.getObjectId();
      return branches.stream()
          .filter(b -> id != null && id.equals(refs.get(Constants.R_HEADS + b).getObjectId()))
          .min((a, b) -> Boolean.compare(!preferred(a), !preferred(b)));
    }

    private static boolean preferred(String branch) {
      return branch.equals("main") || branch.equals("master");
    }

    private static List<String> branchNames(Map<String, Ref> refs) {
      List<String> names = new ArrayList<>();
      for (String name : refs.keySet()) {
        if (name.startsWith(Constants.R_HEADS)) {
          names.add(name.substring(Constants.R_HEADS.length()));
        }
      }
      return names;
    }

    private static String existing(List<String> branches) {
      if (branches.isEmpty()) {
        return "it has no branches";
      }
      int shown = Math.min(branches.size(), 20);
      return "existing branches: "
          + branches.subList(0, shown)
          + (branches.size() > shown ? " and " + (branches.size() - shown) + " more" : "");
    }

    /**
     * Clones the submodules of {@code repository}, and theirs, like {@code git submodule update
     * --init --recursive}, after checking every URL: a submodule may point anywhere, including
     * the worker's own disk.
     */
    private void cloneSubmodules(Repository repository)
        throws CloneFailure, GitAPIException, IOException, ConfigInvalidException,
            InterruptedException {
      if (!SubmoduleWalk.containsGitModulesFile(repository)) {
        return;
      }
      checkCancelled();
      // Copies each URL into .git/config, relative ones resolved against the parent's URL.
      Git.wrap(repository).submoduleInit().call();
      try (SubmoduleWalk walk = SubmoduleWalk.forIndex(repository)) {
        while (walk.next()) {
          String url = walk.getConfigUrl();
          if (url == null) {
            continue;
          }
          Optional<String> problem = spec.urlPolicy().problem(url);
          if (problem.isPresent()) {
            throw new CloneFailure(
                Reason.SUBMODULE_REFUSED,
                "submodule '" + walk.getPath() + "': URL " + problem.get(),
                null);
          }
          URI checked = spec.urlPolicy().normalize(url);
          // The caller's allow-list, as the runtime checked repo_url against it: a submodule must
          // not lead the job to a repository its caller may not clone.
          Optional<String> refusal = spec.repositoryCheck().apply(checked.toString());
          if (refusal.isPresent()) {
            throw new CloneFailure(
                Reason.SUBMODULE_REFUSED,
                "submodule '"
                    + walk.getPath()
                    + "' ("
                    + checked
                    + ") may not be cloned for this job's caller: "
                    + refusal.get()
                    + "; the caller's allowed-repositories must allow every submodule the"
                    + " repository has, or the job must not clone submodules (stage_options"
                    + " git.submodules = false, or worker.stages.git.submodules = false for every"
                    + " job)",
                null);
          }
          connections.allow(checked);
        }
      }
      // What SubmoduleUpdateCommand does for a new submodule, less the checkout of the
      // submodule's default branch that it writes first: a clone, then a checkout of the commit
      // the parent pins, as a detached HEAD, held to the size limit like the repository's own.
      try (SubmoduleWalk walk = SubmoduleWalk.forIndex(repository)) {
        while (walk.next()) {
          String url = walk.getConfigUrl();
          if (walk.getModulesPath() == null || url == null) {
            continue;
          }
          checkCancelled();
          File gitDir =
              new File(new File(repository.getCommonDirectory(), Constants.MODULES), walk.getPath());
          CloneCommand clone =
              Git.cloneRepository()
                  .setURI(url)
                  .setDirectory(walk.getDirectory())
                  .setGitDir(gitDir)
                  .setRelativePaths(true)
                  .setNoCheckout(true)
                  .setProgressMonitor(monitor);
          try (Git submodule = configure(clone).call()) {
            Repository sub = submodule.getRepository();
            checkout(sub, walk.getObjectId(), true);
            RefUpdate head = sub.updateRef(Constants.HEAD, true);
            head.setNewObjectId(walk.getObjectId());
            head.forceUpdate();
            cloneSubmodules(sub);
          }
        }
      }
    }

    /**
     * Credentials and the guarded connections, for every command that talks to a server. No JGit
     * timeout: the connections carry it (see {@link GuardedConnectionFactory}).
     */
    private <C extends TransportCommand<C, ?>> C configure(C command) {
      return command.setCredentialsProvider(credentials).setTransportConfigCallback(this::guard);
    }

    private void guard(Transport transport) {
      // Config such as url.<base>.insteadOf could turn the checked URL into another transport.
      if (!(transport instanceof TransportHttp http)) {
        throw new TransportRefusedException(
            "git chose the " + transport.getClass().getSimpleName() + " transport; only http(s)"
                + " is allowed");
      }
      if (!connections.allows(transport.getURI())) {
        throw new TransportRefusedException(
            "the worker's git configuration rewrote the URL to another host; only checked URLs"
                + " are cloned");
      }
      // Each transport's connections are held to its own repository's path: a redirect to
      // another path on the same host would clone a repository nobody checked.
      if (!connections.allowsRepository(transport.getURI())) {
        throw new TransportRefusedException(
            "the worker's git configuration rewrote the URL to another repository; only checked"
                + " URLs are cloned");
      }
      http.setHttpConnectionFactory(connections.forRepository(transport.getURI()));
    }

    private void checkCancelled() throws InterruptedException {
      if (listener.isCancelled()) {
        throw new InterruptedException("the clone was cancelled");
      }
    }
  }

  /** The mirror there cannot be read or updated; it is removed and built again. */
  private static final class MirrorDamaged extends Exception {
    private static final long serialVersionUID = 1L;

    MirrorDamaged(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** The cache cannot serve this clone; it goes to the server alone. */
  private static final class NoMirror extends Exception {
    private static final long serialVersionUID = 1L;

    NoMirror(String message) {
      super(message);
    }
  }

  /** A transport JGit picked that is not the checked URL over HTTP. */
  static final class TransportRefusedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    TransportRefusedException(String message) {
      super(message);
    }
  }

  /** The commit's committer time; empty when the commit cannot be read (it was just checked out). */
  private static java.util.Optional<java.time.Instant> commitTime(Repository repository,
      ObjectId commit) {
    try (org.eclipse.jgit.revwalk.RevWalk walk = new org.eclipse.jgit.revwalk.RevWalk(repository)) {
      return java.util.Optional.of(
          java.time.Instant.ofEpochSecond(walk.parseCommit(commit).getCommitTime()));
    } catch (java.io.IOException e) {
      return java.util.Optional.empty();
    }
  }
}

package dev.slipway.plugin.git.jgit;

import dev.slipway.plugin.git.CloneFailure;
import dev.slipway.plugin.git.CloneFailure.Reason;
import dev.slipway.plugin.git.CloneListener;
import dev.slipway.plugin.git.CloneResult;
import dev.slipway.plugin.git.CloneSpec;
import dev.slipway.plugin.git.GitClient;
import java.io.File;
import java.io.IOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import javax.net.ssl.SSLException;
import org.eclipse.jgit.api.CloneCommand;
import org.eclipse.jgit.api.Git;
import org.eclipse.jgit.api.TransportCommand;
import org.eclipse.jgit.api.errors.GitAPIException;
import org.eclipse.jgit.api.errors.JGitInternalException;
import org.eclipse.jgit.dircache.DirCacheCheckout;
import org.eclipse.jgit.errors.ConfigInvalidException;
import org.eclipse.jgit.errors.NoRemoteRepositoryException;
import org.eclipse.jgit.lib.Constants;
import org.eclipse.jgit.lib.ObjectId;
import org.eclipse.jgit.lib.ObjectReader;
import org.eclipse.jgit.lib.Ref;
import org.eclipse.jgit.lib.RefUpdate;
import org.eclipse.jgit.lib.Repository;
import org.eclipse.jgit.revwalk.RevCommit;
import org.eclipse.jgit.revwalk.RevTree;
import org.eclipse.jgit.revwalk.RevWalk;
import org.eclipse.jgit.submodule.SubmoduleWalk;
import org.eclipse.jgit.transport.CredentialsProvider;
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
 */
public final class JGitClient implements GitClient {

  /** For the stage factory. */
  public JGitClient() {
    IsolatedSystemReader.install();
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
  private static final class Clone {
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
      String branch = resolveBranch();
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
        return new CloneResult(head.name(), branch);
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

    /** The branch to clone: the one asked for, which must exist, or the remote's default. */
    private String resolveBranch() throws CloneFailure, GitAPIException {
      Map<String, Ref> refs =
          configure(Git.lsRemoteRepository().setRemote(spec.url().toString())).callAsMap();
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
                    + " repository has, or the worker must not clone submodules"
                    + " (worker.stages.git.submodules = false)",
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

  /** A transport JGit picked that is not the checked URL over HTTP. */
  static final class TransportRefusedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    TransportRefusedException(String message) {
      super(message);
    }
  }
}

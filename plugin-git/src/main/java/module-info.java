/**
 * The {@code git} stage: clones the job's repository into its workspace with JGit, shallow and
 * single-branch by default, sending the job's token only as HTTP basic credentials.
 *
 * <p>Exports nothing: the runtime reaches the plugin only through its {@code StageFactory}, and
 * JGit's types never leave it.
 */
module dev.slipway.plugin.git {
  requires dev.slipway.worker.api;
  requires org.eclipse.jgit;

  provides dev.slipway.worker.api.StageFactory with
      dev.slipway.plugin.git.GitStageFactory;
}

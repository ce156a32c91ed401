/**
 * The {@code docker-push} stage of the Slipway build worker: tags the image an earlier stage built
 * as {@code <registry>/<repository>:<tag>}, pushes it through the Docker engine (docker-java over
 * the httpclient5 transport), confirms the pushed digest with the registry's own HTTP API and
 * publishes the image URI and digest. Exports nothing; the runtime finds the stage through the
 * provided {@link dev.slipway.worker.api.StageFactory}.
 */
module dev.slipway.plugin.dockerpush {
  requires dev.slipway.worker.api;
  // docker-java (automatic modules): the model types, the client, and the unix-socket transport.
  requires com.github.dockerjava.api;
  requires com.github.dockerjava.core;
  requires com.github.dockerjava.transport;
  requires com.github.dockerjava.transport.httpclient5;
  // The digest check talks to the registry's HTTP API itself.
  requires java.net.http;
  // Start-up warnings; the runtime's layer brings SLF4J and its binding.
  requires org.slf4j;

  provides dev.slipway.worker.api.StageFactory with
      dev.slipway.plugin.dockerpush.DockerPushStageFactory;
}

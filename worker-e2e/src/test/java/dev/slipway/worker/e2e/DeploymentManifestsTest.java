package dev.slipway.worker.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import dev.slipway.proto.v1.JobServiceGrpc;
import dev.slipway.proto.v1.PingRequest;
import dev.slipway.proto.v1.RegisterRequest;
import dev.slipway.proto.v1.RegisterResponse;
import dev.slipway.proto.v1.WorkerServiceGrpc;
import dev.slipway.proto.v1.WorkerStatus;
import dev.slipway.worker.runtime.Worker;
import dev.slipway.worker.runtime.WorkerOptions;
import dev.slipway.worker.runtime.config.ConfigLoader;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.config.SecuritySettings;
import dev.slipway.worker.runtime.config.StartupException;
import dev.slipway.worker.runtime.config.WorkerSettings;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import dev.slipway.worker.runtime.registration.Registrar;
import dev.slipway.worker.testkit.TestCertificates;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.Reader;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.net.ssl.SSLSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

/**
 * The Kubernetes manifests and the Dockerfile in {@code dist/}, checked as far as this machine
 * allows: well-formed YAML, and ports, probes, variables, Secrets, network policies and
 * configuration that the code accepts. The ConfigMap's worker.conf is started for real, with test
 * certificates where the Secrets are mounted, called the way the orchestrator calls it and probed
 * the way the kubelet probes it.
 */
class DeploymentManifestsTest {
  static final Path DIST = Path.of("..", "dist").toAbsolutePath().normalize();
  static final Path HOME = Path.of("..").toAbsolutePath().normalize();
  static final List<String> MANIFESTS = List.of("configmap.yaml", "worker-deployment.yaml",
      "buildkitd.yaml", "network-policy.yaml");
  static final List<Map<String, Object>> DOCS = new ArrayList<>();
  /** The subject the ConfigMap's caller `orchestrator` is known by. */
  static final String ORCHESTRATOR_SUBJECT = "CN=slipway-orchestrator,O=slipway";
  static final Map<String, String> WORKER_LABELS =
      Map.of("app.kubernetes.io/name", "slipway-worker");
  /** The files worker.conf reads, each to be found in a mounted Secret. */
  static final List<String> TLS_PATHS = List.of("worker.tls.cert-file", "worker.tls.key-file",
      "worker.tls.client-ca-file", "worker.orchestrator.tls.ca-file",
      "worker.orchestrator.tls.cert-file", "worker.orchestrator.tls.key-file",
      "worker.stages.buildkit.tls.ca-cert", "worker.stages.buildkit.tls.cert",
      "worker.stages.buildkit.tls.key");

  @TempDir Path dir;

  @BeforeAll
  @SuppressWarnings("unchecked")
  static void parse() throws Exception {
    List<String> files = new ArrayList<>(MANIFESTS);
    files.add("kustomization.yaml");
    for (String file : files) {
      try (Reader reader = Files.newBufferedReader(DIST.resolve("k8s").resolve(file))) {
        for (Object doc : new Yaml().loadAll(reader)) {
          Map<String, Object> map = (Map<String, Object>) doc;
          map.put("__file", file);
          DOCS.add(map);
        }
      }
    }
  }

  @SuppressWarnings("unchecked")
  static <T> T at(Object node, Object... path) {
    Object current = node;
    for (Object step : path) {
      current = step instanceof Integer i ? ((List<Object>) current).get(i)
          : ((Map<String, Object>) current).get(step);
    }
    return (T) current;
  }

  static Map<String, Object> doc(String kind, String name) {
    return DOCS.stream().filter(d -> kind.equals(d.get("kind"))
        && name.equals(at(d, "metadata", "name"))).findFirst()
        .orElseThrow(() -> new AssertionError("no " + kind + " " + name));
  }

  static Map<String, Object> container(String deployment) {
    return at(doc("Deployment", deployment), "spec", "template", "spec", "containers", 0);
  }

  @Test
  void kustomizationListsEveryManifest() throws Exception {
    Map<String, Object> kustomization = DOCS.stream()
        .filter(d -> "Kustomization".equals(d.get("kind"))).findFirst().orElseThrow();
    List<String> resources = at(kustomization, "resources");
    assertEquals(MANIFESTS, resources);
    try (Stream<Path> files = Files.list(DIST.resolve("k8s"))) {
      assertEquals(new TreeSet<>(MANIFESTS), files.map(f -> f.getFileName().toString())
          .filter(f -> f.endsWith(".yaml") && !f.equals("kustomization.yaml"))
          .collect(java.util.stream.Collectors.toCollection(TreeSet::new)),
          "every manifest in dist/k8s is applied by kustomization.yaml");
    }
  }

  @Test
  void workerPortsAndProbesMatchTheConfiguration() throws Exception {
    Config config = workerConfig(Map.of("POD_NAME", "slipway-worker-abc", "POD_IP", "10.1.2.3"));
    Map<String, Object> container = container("slipway-worker");
    List<Map<String, Object>> ports = at(container, "ports");
    assertEquals(config.getInt("worker.port"), ports.get(0).get("containerPort"));
    assertEquals(config.getInt("worker.metrics.port"), ports.get(1).get("containerPort"));
    // The kubelet's gRPC probe speaks plaintext, and the gRPC port is TLS only: readiness is the
    // kubelet's gRPC probe on the plaintext health-only listener (worker.health), which follows
    // draining; liveness the metrics server's /-/healthy, which does not.
    assertFalse(config.getString("worker.tls.cert-file").isEmpty());
    assertTrue(config.getBoolean("worker.health.enabled"), "the readiness probe needs health");
    assertFalse(SecuritySettings.isLoopback(config.getString("worker.health.bind-address")),
        "the kubelet probes the pod's IP");
    int healthPort = config.getInt("worker.health.port");
    assertEquals(healthPort, port(container, "health"));
    Object readinessPort = at(container, "readinessProbe", "grpc", "port");
    assertTrue(readinessPort instanceof Integer, "grpc.port is a number, never a port name: "
        + readinessPort);
    assertEquals(healthPort, readinessPort);
    assertNull(at(container, "readinessProbe", "grpc", "service"),
        "the overall status (\"\"), the one that turns NOT_SERVING while draining");
    assertNull(at(container, "readinessProbe", "tcpSocket"));
    assertNull(at(container, "readinessProbe", "httpGet"));
    assertNull(at(container, "livenessProbe", "grpc"),
        "liveness: health turns NOT_SERVING while draining, and a draining worker must not be"
            + " restarted");
    assertTrue(config.getBoolean("worker.metrics.enabled"), "the liveness probe needs metrics");
    assertEquals(config.getInt("worker.metrics.port"),
        port(container, at(container, "livenessProbe", "httpGet", "port")));
    assertEquals("/-/healthy", at(container, "livenessProbe", "httpGet", "path"));
    assertEquals(String.valueOf(config.getInt("worker.metrics.port")), at(doc("Deployment",
        "slipway-worker"), "spec", "template", "metadata", "annotations", "prometheus.io/port"));
    assertEquals("slipway-worker-abc", config.getString("worker.id"));
    assertEquals("10.1.2.3", config.getString("worker.advertise-address"));
    int grace = at(doc("Deployment", "slipway-worker"), "spec", "template", "spec",
        "terminationGracePeriodSeconds");
    assertTrue(grace > config.getDuration("worker.shutdown-grace-period").toSeconds(),
        "Kubernetes must wait longer than the worker drains");
  }

  @Test
  void configMapConfigurationServesMutualTlsToTheOrchestratorAlone() throws Exception {
    String text = at(doc("ConfigMap", "slipway-worker"), "data", "worker.conf");
    assertFalse(text.matches("(?s).*\\binsecure\\s*[=:].*"), "no worker.insecure in the pod");
    Config config = workerConfig(Map.of());
    assertFalse(config.getBoolean("worker.insecure"));
    // It serves the pod's IP: the orchestrator must reach it.
    assertFalse(SecuritySettings.isLoopback(config.getString("worker.bind-address")));
    for (String key : List.of("cert-file", "key-file", "client-ca-file")) {
      assertFalse(config.getString("worker.tls." + key).isEmpty(), "worker.tls." + key);
    }
    List<? extends Config> callers = config.getConfigList("worker.callers");
    assertEquals(1, callers.size(), "the orchestrator is the one caller");
    assertEquals("orchestrator", callers.get(0).getString("name"));
    assertEquals(ORCHESTRATOR_SUBJECT, callers.get(0).getString("certificate-subject"));
    assertEquals(List.of("grpc.health.v1.Health"), config.getStringList("worker.open-methods"),
        "nothing but health without credentials");
    assertTrue(config.getBoolean("worker.orchestrator.tls.enabled"));
    assertEquals("buildctl", config.getString("worker.stages.buildkit.backend"));
    assertTrue(config.getString("worker.stages.buildkit.addr").startsWith("tcp://"));
    for (String key : List.of("ca-cert", "cert", "key")) {
      assertFalse(config.getString("worker.stages.buildkit.tls." + key).isEmpty(),
          "worker.stages.buildkit.tls." + key);
    }
  }

  @Test
  void everyFileTheConfigurationReadsIsInAMountedDocumentedSecret() throws Exception {
    Config config = workerConfig(Map.of());
    Map<String, Set<String>> documented = documentedSecrets();
    Map<String, Object> worker = doc("Deployment", "slipway-worker");
    Map<String, String> expectedSecret = Map.of("worker.tls.", "slipway-worker-tls",
        "worker.orchestrator.tls.", "slipway-worker-orchestrator-tls",
        "worker.stages.buildkit.tls.", "slipway-buildkit-client-tls");
    for (String key : TLS_PATHS) {
      Path file = Path.of(config.getString(key));
      String secret = secretMountedAt(worker, "worker", file.getParent().toString());
      String prefix = expectedSecret.keySet().stream().filter(key::startsWith).findFirst()
          .orElseThrow();
      assertEquals(expectedSecret.get(prefix), secret, key);
      assertTrue(documented.containsKey(secret), secret + " is not in kustomization.yaml's"
          + " `kubectl create secret` lines: " + documented.keySet());
      assertTrue(documented.get(secret).contains(file.getFileName().toString()), key + " = "
          + file + ", but " + secret + " is documented with " + documented.get(secret));
    }
    // The mTLS files of buildkitd, likewise.
    Map<String, Object> buildkitd = doc("Deployment", "slipway-buildkitd");
    List<String> args = at(container("slipway-buildkitd"), "args");
    for (String flag : List.of("--tlscacert", "--tlscert", "--tlskey")) {
      int i = args.indexOf(flag);
      assertTrue(i >= 0 && i + 1 < args.size(), "buildkitd needs " + flag + ": " + args);
      Path file = Path.of(args.get(i + 1));
      String secret = secretMountedAt(buildkitd, "buildkitd", file.getParent().toString());
      assertEquals("slipway-buildkitd-tls", secret, flag);
      assertTrue(documented.getOrDefault(secret, Set.of())
          .contains(file.getFileName().toString()), flag + " " + file);
    }
  }

  @Test
  void networkPoliciesLetOnlyTheOrchestratorAndMonitoringReachTheWorkers() throws Exception {
    Config config = workerConfig(Map.of());
    Map<Integer, List<Map<String, Object>>> peers = ingress(at(doc("Deployment",
        "slipway-worker"), "spec", "template", "metadata", "labels"));
    assertEquals(Set.of(config.getInt("worker.port"), config.getInt("worker.metrics.port")),
        peers.keySet(), "ports the workers may be reached on");
    assertFalse(peers.containsKey(config.getInt("worker.health.port")),
        "plaintext health is for the kubelet on the pod's node, opened to no pod");
    assertEquals(List.of(Map.of("podSelector", Map.of("matchLabels",
            Map.of("app.kubernetes.io/name", "slipway-orchestrator")))),
        peers.get(config.getInt("worker.port")), "who may call JobService");
    assertEquals(List.of(Map.of("namespaceSelector", Map.of("matchLabels",
            Map.of("kubernetes.io/metadata.name", "monitoring")))),
        peers.get(config.getInt("worker.metrics.port")), "who may scrape metrics");
  }

  @Test
  void networkPolicyLetsOnlyTheWorkersReachBuildkitd() throws Exception {
    Map<Integer, List<Map<String, Object>>> peers = ingress(at(doc("Deployment",
        "slipway-buildkitd"), "spec", "template", "metadata", "labels"));
    int port = at(doc("Service", "slipway-buildkitd"), "spec", "ports", 0, "port");
    assertEquals(Map.of(port, List.of(Map.of("podSelector", Map.of("matchLabels",
        WORKER_LABELS)))), peers);
    Map<String, Object> labels = at(doc("Deployment", "slipway-worker"), "spec", "template",
        "metadata", "labels");
    assertTrue(labels.entrySet().containsAll(WORKER_LABELS.entrySet()));
  }

  @Test
  void buildkitdServiceIsWhereTheWorkersLookAndServesMutualTls() throws Exception {
    Config config = workerConfig(Map.of());
    Map<String, Object> service = doc("Service", "slipway-buildkitd");
    int port = at(service, "spec", "ports", 0, "port");
    assertEquals("tcp://slipway-buildkitd:" + port,
        config.getString("worker.stages.buildkit.addr"));
    List<String> args = at(container("slipway-buildkitd"), "args");
    assertTrue(args.contains("tcp://0.0.0.0:" + port), args.toString());
    // --tlscacert: buildkitd refuses every client without a certificate of that CA.
    for (String flag : List.of("--tlscacert", "--tlscert", "--tlskey")) {
      assertTrue(args.contains(flag), flag + " in " + args);
    }
    // The probes' buildctl uses the unix socket, which TLS does not cover.
    assertTrue(args.contains("unix:///run/buildkit/buildkitd.sock"), args.toString());
    List<String> probe = at(container("slipway-buildkitd"), "readinessProbe", "exec", "command");
    assertFalse(probe.contains("--addr"), "the probe uses buildctl's default, the socket");
  }

  @Test
  void workerConfigurationInTheConfigMapStartsAWorkerThatOnlyTheOrchestratorCanCall()
      throws Exception {
    // What the Secrets hold, made by test authorities and put where they are mounted (under
    // `root`): the workers' server certificate, the orchestrator's client CA, and so on.
    Path root = dir.resolve("root");
    Path pki = dir.resolve("pki");
    Map<String, Object> worker = doc("Deployment", "slipway-worker");
    Config pod = workerConfig(Map.of());
    TestCertificates.Authority workersCa = TestCertificates.newAuthority("slipway workers CA");
    TestCertificates.Authority clientsCa = TestCertificates.newAuthority("orchestrator clients CA");
    TestCertificates.Authority orchestratorCa = TestCertificates.newAuthority("orchestrator CA");
    TestCertificates.Authority buildkitCa = TestCertificates.newAuthority("buildkit CA");
    // One certificate for every pod, so it names slipway-worker (the orchestrator checks that
    // name, as it calls pod IPs) and no address.
    TestCertificates.Issued server = workersCa.issueServer(pki, "worker", "slipway-worker");
    place(root, pod, "worker.tls.cert-file", server.certFile());
    place(root, pod, "worker.tls.key-file", server.keyFile());
    place(root, pod, "worker.tls.client-ca-file",
        clientsCa.writeCertificate(pki.resolve("clients-ca.crt")));
    TestCertificates.Issued workerClient =
        workersCa.issueClient(pki, "worker-client", "CN=slipway-worker,O=slipway");
    place(root, pod, "worker.orchestrator.tls.ca-file",
        orchestratorCa.writeCertificate(pki.resolve("orchestrator-ca.crt")));
    place(root, pod, "worker.orchestrator.tls.cert-file", workerClient.certFile());
    place(root, pod, "worker.orchestrator.tls.key-file", workerClient.keyFile());
    TestCertificates.Issued buildctl =
        buildkitCa.issueClient(pki, "buildctl", "CN=slipway-worker,O=slipway");
    place(root, pod, "worker.stages.buildkit.tls.ca-cert",
        buildkitCa.writeCertificate(pki.resolve("buildkit-ca.crt")));
    place(root, pod, "worker.stages.buildkit.tls.cert", buildctl.certFile());
    place(root, pod, "worker.stages.buildkit.tls.key", buildctl.keyFile());
    TestCertificates.Issued orchestrator = clientsCa.issueClient(pki, "orchestrator",
        ORCHESTRATOR_SUBJECT, "spiffe://slipway.test/orchestrator");
    TestCertificates.Issued stranger = clientsCa.issueClient(pki, "stranger",
        "CN=someone-else,O=slipway");

    // The ConfigMap's worker.conf with every Secret's mount path moved under `root`.
    String text = at(doc("ConfigMap", "slipway-worker"), "data", "worker.conf");
    List<Map<String, Object>> mounts = at(container("slipway-worker"), "volumeMounts");
    for (Map<String, Object> mount : mounts) {
      String path = (String) mount.get("mountPath");
      if (secretName(worker, (String) mount.get("name")).isPresent()) {
        text = text.replace("\"" + path + "/", "\"" + local(root, path) + "/");
      }
    }
    Path conf = dir.resolve("worker.conf");
    Files.writeString(conf, text);

    // A fake orchestrator over mutual TLS, where the worker registers.
    List<RegisterRequest> registrations = new CopyOnWriteArrayList<>();
    List<String> registrationPeers = new CopyOnWriteArrayList<>();
    TestCertificates.Issued orchestratorServer =
        orchestratorCa.issueServer(pki, "orchestrator-server", "127.0.0.1");
    Server fake = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0),
            TlsServerCredentials.newBuilder()
                .keyManager(orchestratorServer.certFile().toFile(),
                    orchestratorServer.keyFile().toFile())
                .trustManager(workersCa.writeCertificate(pki.resolve("workers-ca.crt")).toFile())
                .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE).build())
        .addService(ServerInterceptors.intercept(new WorkerServiceGrpc.WorkerServiceImplBase() {
          @Override
          public void register(RegisterRequest request,
              StreamObserver<RegisterResponse> observer) {
            registrations.add(request);
            observer.onNext(RegisterResponse.newBuilder().setAccepted(true).build());
            observer.onCompleted();
          }
        }, peerRecorder(registrationPeers)))
        .build().start();

    Map<String, String> env = containerEnv();
    env.put("POD_NAME", "slipway-worker-abc");
    env.put("POD_IP", "10.1.2.3");
    try {
      // As in the pod, serving every interface: the start-up checks accept it (TLS, callers).
      try (Worker prepared = Worker.prepare(new WorkerOptions(Optional.of(conf), dir,
          Environment.of(env), overrides(false), HOME), PluginRegistry.discover(), null)) {
        assertEquals(List.of("git", "buildkit", "ecr", "docker-push"),
            prepared.pipeline().ids());
        assertEquals(Optional.of("slipway-orchestrator:50051"),
            prepared.settings().orchestrator().address());
        assertEquals(Optional.of("eu-west-1"), prepared.settings().region());
        assertEquals("0.0.0.0", prepared.settings().bindAddress());
        assertTrue(prepared.settings().security().tls().orElseThrow().clientCaFile()
            .isPresent());
        assertEquals(Optional.of(new WorkerSettings.Health("0.0.0.0",
                pod.getInt("worker.health.port"))), prepared.settings().health());
      }

      // Started on loopback with any free ports, registering with the fake orchestrator.
      env.put("ORCHESTRATOR_ADDR", "127.0.0.1:" + fake.getPort());
      try (Worker started = Worker.prepare(new WorkerOptions(Optional.of(conf), dir,
          Environment.of(env), overrides(true), HOME), PluginRegistry.discover(), null)) {
        started.start();
        Path ca = workersCa.writeCertificate(pki.resolve("workers-ca.crt"));

        // The orchestrator, with its client certificate: Ping and health answer.
        ManagedChannel channel = channel(started.port(), tls(ca, orchestrator));
        try {
          assertEquals(WorkerStatus.WORKER_STATUS_FREE, JobServiceGrpc.newBlockingStub(channel)
              .withDeadlineAfter(10, TimeUnit.SECONDS).ping(PingRequest.getDefaultInstance())
              .getStatus());
          assertEquals(HealthCheckResponse.ServingStatus.SERVING, HealthGrpc.newBlockingStub(
                  channel).withDeadlineAfter(10, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance()).getStatus());
        } finally {
          channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        // A certificate of the same CA with another subject is no caller of this worker.
        assertEquals(Status.Code.UNAUTHENTICATED, pingFails(started.port(), tls(ca, stranger)));
        // No client certificate, or no TLS at all: no connection.
        assertEquals(Status.Code.UNAVAILABLE, pingFails(started.port(), tls(ca, null)));
        assertEquals(Status.Code.UNAVAILABLE,
            pingFails(started.port(), InsecureChannelCredentials.create()));

        // The probes. Readiness: the kubelet's gRPC probe, plaintext, on worker.health's
        // listener, which serves health and nothing else.
        ManagedChannel probe = Grpc.newChannelBuilderForAddress("127.0.0.1",
            started.healthPort().orElseThrow(), InsecureChannelCredentials.create()).build();
        try {
          assertEquals(HealthCheckResponse.ServingStatus.SERVING, HealthGrpc.newBlockingStub(
                  probe).withDeadlineAfter(10, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance()).getStatus());
          StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
              () -> JobServiceGrpc.newBlockingStub(probe).withDeadlineAfter(10, TimeUnit.SECONDS)
                  .ping(PingRequest.getDefaultInstance()));
          assertEquals(Status.Code.UNIMPLEMENTED, e.getStatus().getCode(),
              "no JobService on the plaintext health listener");
        } finally {
          probe.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        // Liveness: /-/healthy on the metrics port.
        HttpURLConnection http = (HttpURLConnection) URI.create("http://127.0.0.1:"
            + started.metricsPort() + "/-/healthy").toURL().openConnection();
        assertEquals(200, http.getResponseCode());
        http.disconnect();

        // Registration over mutual TLS, under the pod's name and IP.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (started.registrationState().orElseThrow() != Registrar.State.REGISTERED
            && System.nanoTime() < deadline) {
          Thread.sleep(20);
        }
        assertEquals(Registrar.State.REGISTERED, started.registrationState().orElseThrow());
        assertEquals("slipway-worker-abc", registrations.get(0).getWorkerId());
        assertEquals("10.1.2.3", registrations.get(0).getIp());
        assertEquals(started.port(), registrations.get(0).getPort());
        assertEquals(workerClient.subject(), registrationPeers.get(0));
      }
    } finally {
      fake.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void shippedDefaultConfigurationServesLoopbackOnlyAndPassesCheckConfig() throws Exception {
    Path conf = DIST.resolve("src/main/dist/conf/worker.conf");
    // What `bin/worker check-config` does on a fresh install (with the region its ecr stage
    // needs, from AWS_REGION).
    Environment env = Environment.of(Map.of("AWS_REGION", "eu-west-1"));
    // Its git cache in this test's directory, not under the module's working directory.
    Properties cache = new Properties();
    cache.setProperty("worker.stages.git.cache.dir", dir.resolve("git-cache").toString());
    try (Worker worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir, env,
        cache, HOME), PluginRegistry.discover(), null)) {
      assertTrue(SecuritySettings.isLoopback(worker.settings().bindAddress()),
          worker.settings().bindAddress());
      assertFalse(worker.settings().security().insecure());
      assertEquals(List.of("git", "buildkit", "ecr", "docker-push"), worker.pipeline().ids());
    }
    // Opened to other hosts without TLS and callers, it refuses to start, as its comments say.
    Properties open = new Properties();
    open.putAll(cache);
    open.setProperty("worker.bind-address", "0.0.0.0");
    StartupException refused = assertThrows(StartupException.class, () -> Worker.prepare(
        new WorkerOptions(Optional.of(conf), dir, env, open, HOME), PluginRegistry.discover(),
        null));
    assertTrue(refused.getMessage().contains("worker.insecure"), refused.getMessage());
  }

  /**
   * The git stage moves checkouts made ready in its cache into workspaces with a rename: the
   * cache and the workspace root must be on one mounted volume (a rename fails across mounts),
   * and the cache outside the workspace root, whose leftovers the runtime removes.
   */
  @Test
  void theGitCacheIsOnTheWorkspacesVolumeOutsideTheWorkspaceRoot() throws Exception {
    Config config = workerConfig(Map.of());
    Path workspaces = Path.of(config.getString("worker.workspace-root"));
    Path cache = Path.of(config.getString("worker.stages.git.cache.dir"));
    assertFalse(cache.startsWith(workspaces), cache + " is inside " + workspaces);
    assertFalse(workspaces.startsWith(cache), workspaces + " is inside " + cache);
    List<Map<String, Object>> mounts = at(container("slipway-worker"), "volumeMounts");
    List<String> holdingBoth = mounts.stream()
        .filter(m -> workspaces.startsWith(Path.of((String) m.get("mountPath")))
            && cache.startsWith(Path.of((String) m.get("mountPath"))))
        .map(m -> (String) m.get("name")).toList();
    assertEquals(1, holdingBoth.size(), mounts::toString);
    // No other mount on the way to either, which would put it on a volume of its own.
    assertTrue(mounts.stream().filter(m -> !holdingBoth.contains(m.get("name"))).noneMatch(m ->
        workspaces.startsWith(Path.of((String) m.get("mountPath")))
            || cache.startsWith(Path.of((String) m.get("mountPath")))), mounts::toString);
    List<Map<String, Object>> volumes =
        at(doc("Deployment", "slipway-worker"), "spec", "template", "spec", "volumes");
    assertTrue(volumes.stream().anyMatch(v -> holdingBoth.get(0).equals(v.get("name"))
        && v.containsKey("emptyDir")), volumes::toString);
  }

  @Test
  void dockerfileExposesTheWorkerPortsAndRunsTheLauncher() throws Exception {
    String dockerfile = Files.readString(DIST.resolve("Dockerfile"));
    Config config = workerConfig(Map.of());
    assertTrue(dockerfile.contains("EXPOSE " + config.getInt("worker.port") + " "
        + config.getInt("worker.metrics.port")), dockerfile);
    assertTrue(dockerfile.contains("/opt/slipway-worker/bin/worker"));
    Map<String, Object> container = container("slipway-worker");
    List<String> args = at(container, "args");
    assertEquals(List.of("serve", "--config", "/etc/slipway/worker.conf"), args);
    List<Map<String, Object>> mounts = at(container, "volumeMounts");
    assertTrue(mounts.stream().anyMatch(m -> "/etc/slipway".equals(m.get("mountPath"))));
    assertFalse(dockerfile.contains("latest"), "pin base images");
  }

  /** -D style overrides: none for the pod as it is; loopback and free ports to start it here. */
  private Properties overrides(boolean local) {
    Properties properties = new Properties();
    properties.setProperty("worker.workspace-root", dir.resolve("workspaces").toString());
    properties.setProperty("worker.stages.git.cache.dir", dir.resolve("git-cache").toString());
    if (local) {
      properties.setProperty("worker.bind-address", "127.0.0.1");
      properties.setProperty("worker.port", "0");
      properties.setProperty("worker.metrics.bind-address", "127.0.0.1");
      properties.setProperty("worker.metrics.port", "0");
      properties.setProperty("worker.health.bind-address", "127.0.0.1");
      properties.setProperty("worker.health.port", "0");
    }
    return properties;
  }

  /** Where a path inside the pod is, under {@code root}. */
  private static Path local(Path root, String podPath) {
    return root.resolve(podPath.replaceFirst("^/+", ""));
  }

  /** Copies {@code file} to where the pod's configuration key {@code key} points, under root. */
  private static void place(Path root, Config pod, String key, Path file) throws Exception {
    Path target = local(root, pod.getString(key));
    Files.createDirectories(target.getParent());
    Files.copy(file, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  private static ChannelCredentials tls(Path ca, TestCertificates.Issued client)
      throws Exception {
    TlsChannelCredentials.Builder builder = TlsChannelCredentials.newBuilder()
        .trustManager(ca.toFile());
    if (client != null) {
      builder.keyManager(client.certFile().toFile(), client.keyFile().toFile());
    }
    return builder.build();
  }

  /** A channel to the worker as the orchestrator opens one: to an address, checking the name. */
  private static ManagedChannel channel(int port, ChannelCredentials credentials) {
    return Grpc.newChannelBuilderForAddress("127.0.0.1", port, credentials)
        .overrideAuthority("slipway-worker").build();
  }

  private static Status.Code pingFails(int port, ChannelCredentials credentials)
      throws InterruptedException {
    ManagedChannel channel = channel(port, credentials);
    try {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
              .ping(PingRequest.getDefaultInstance()));
      return e.getStatus().getCode();
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** Records the subject of each call's client certificate. */
  private static ServerInterceptor peerRecorder(List<String> subjects) {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call,
          Metadata headers, ServerCallHandler<Q, R> next) {
        SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
        try {
          subjects.add(((java.security.cert.X509Certificate) session.getPeerCertificates()[0])
              .getSubjectX500Principal().getName());
        } catch (Exception e) {
          subjects.add("none: " + e);
        }
        return next.startCall(call, headers);
      }
    };
  }

  /** The containerPort a probe's port (a number or a port name) refers to. */
  private static int port(Map<String, Object> container, Object ref) {
    if (ref instanceof Integer number) {
      return number;
    }
    List<Map<String, Object>> ports = at(container, "ports");
    return ports.stream().filter(p -> ref.equals(p.get("name"))).findFirst()
        .map(p -> (Integer) p.get("containerPort"))
        .orElseThrow(() -> new AssertionError("no port named " + ref));
  }

  /** The Secret behind a pod volume, if it is one. */
  private static Optional<String> secretName(Map<String, Object> deployment, String volume) {
    List<Map<String, Object>> volumes = at(deployment, "spec", "template", "spec", "volumes");
    return volumes.stream().filter(v -> volume.equals(v.get("name"))).findFirst()
        .filter(v -> v.get("secret") != null).map(v -> at(v, "secret", "secretName"));
  }

  /** The Secret mounted, whole and read-only, at {@code mountPath} in the named container. */
  private static String secretMountedAt(Map<String, Object> deployment, String container,
      String mountPath) {
    List<Map<String, Object>> containers = at(deployment, "spec", "template", "spec",
        "containers");
    Map<String, Object> c = containers.stream().filter(x -> container.equals(x.get("name")))
        .findFirst().orElseThrow();
    List<Map<String, Object>> mounts = at(c, "volumeMounts");
    Map<String, Object> mount = mounts.stream()
        .filter(m -> mountPath.equals(m.get("mountPath"))).findFirst()
        .orElseThrow(() -> new AssertionError("nothing is mounted at " + mountPath + " in "
            + container));
    assertEquals(Boolean.TRUE, mount.get("readOnly"), mountPath + " read-only");
    assertNull(mount.get("subPath"), mountPath + ": a subPath mount sees no updates");
    return secretName(deployment, (String) mount.get("name"))
        .orElseThrow(() -> new AssertionError(mountPath + " is not a Secret"));
  }

  /** Secret name to keys, from kustomization.yaml's `kubectl create secret generic` lines. */
  private static Map<String, Set<String>> documentedSecrets() throws Exception {
    String comments = String.join("\n", Files.readAllLines(
            DIST.resolve("k8s/kustomization.yaml")).stream()
        .map(l -> l.replaceFirst("^#\\s?", "")).toList())
        .replaceAll("\\\\\n\\s*", " ");
    Map<String, Set<String>> secrets = new TreeMap<>();
    Matcher command = Pattern.compile("kubectl create secret generic (\\S+)([^\n]*)")
        .matcher(comments);
    while (command.find()) {
      Set<String> keys = new TreeSet<>();
      Matcher file = Pattern.compile("--from-file=([^=\\s]+)=").matcher(command.group(2));
      while (file.find()) {
        keys.add(file.group(1));
      }
      secrets.put(command.group(1), keys);
    }
    return secrets;
  }

  /**
   * Port to the peers allowed on it, over every NetworkPolicy that selects pods with these
   * labels. A rule without ports or without peers would allow too much, and fails.
   */
  private static Map<Integer, List<Map<String, Object>>> ingress(Map<String, Object> labels) {
    Map<Integer, List<Map<String, Object>>> allowed = new TreeMap<>();
    int policies = 0;
    for (Map<String, Object> policy : DOCS) {
      if (!"NetworkPolicy".equals(policy.get("kind"))) {
        continue;
      }
      Map<String, Object> selector = at(policy, "spec", "podSelector", "matchLabels");
      assertNotNull(selector, at(policy, "metadata", "name") + ": matchLabels");
      if (!labels.entrySet().containsAll(selector.entrySet())) {
        continue;
      }
      policies++;
      List<String> types = at(policy, "spec", "policyTypes");
      assertTrue(types.contains("Ingress"), types.toString());
      List<Map<String, Object>> rules = at(policy, "spec", "ingress");
      for (Map<String, Object> rule : rules) {
        List<Map<String, Object>> from = at(rule, "from");
        List<Map<String, Object>> ports = at(rule, "ports");
        assertTrue(from != null && !from.isEmpty(), "a rule without `from` admits anyone");
        assertTrue(ports != null && !ports.isEmpty(), "a rule without `ports` opens all");
        for (Map<String, Object> port : ports) {
          assertEquals("TCP", port.getOrDefault("protocol", "TCP"));
          allowed.computeIfAbsent((Integer) port.get("port"), p -> new ArrayList<>())
              .addAll(from);
        }
      }
    }
    assertTrue(policies > 0, "no NetworkPolicy selects " + labels);
    return allowed;
  }

  private Map<String, String> containerEnv() {
    Map<String, String> env = new HashMap<>();
    List<Map<String, Object>> vars = at(container("slipway-worker"), "env");
    for (Map<String, Object> var : vars) {
      if (var.get("value") != null) {
        env.put((String) var.get("name"), (String) var.get("value"));
      }
    }
    return env;
  }

  private Config workerConfig(Map<String, String> extra) throws Exception {
    Map<String, String> env = containerEnv();
    env.putAll(extra);
    Path conf = dir.resolve("worker.conf");
    Files.writeString(conf, at(doc("ConfigMap", "slipway-worker"), "data", "worker.conf"));
    List<Module> modules = PluginRegistry.discover().all().stream().map(s -> s.module())
        .distinct().toList();
    return ConfigLoader.load(Optional.of(conf), dir, Environment.of(env), new Properties(),
        modules);
  }
}

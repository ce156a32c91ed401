package dev.slipway.worker.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import dev.slipway.worker.runtime.config.ConfigLoader;
import dev.slipway.worker.runtime.config.Environment;
import dev.slipway.worker.runtime.plugins.PluginRegistry;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

/**
 * The Kubernetes manifests and the Dockerfile in {@code dist/}, checked as far as this machine
 * allows: well-formed YAML, and ports, probes, variables and configuration that the code accepts.
 */
class DeploymentManifestsTest {
  static final Path DIST = Path.of("..", "dist").toAbsolutePath().normalize();
  static final List<Map<String, Object>> DOCS = new ArrayList<>();

  @TempDir Path dir;

  @BeforeAll
  @SuppressWarnings("unchecked")
  static void parse() throws Exception {
    for (String file : List.of("configmap.yaml", "worker-deployment.yaml", "buildkitd.yaml",
        "kustomization.yaml")) {
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

  @Test
  void kustomizationListsEveryManifest() throws Exception {
    Map<String, Object> kustomization = DOCS.stream()
        .filter(d -> "Kustomization".equals(d.get("kind"))).findFirst().orElseThrow();
    List<String> resources = at(kustomization, "resources");
    assertEquals(List.of("configmap.yaml", "worker-deployment.yaml", "buildkitd.yaml"), resources);
  }

  @Test
  void workerPortsAndProbesMatchTheConfiguration() throws Exception {
    Config config = workerConfig(Map.of("POD_NAME", "slipway-worker-abc", "POD_IP", "10.1.2.3"));
    Map<String, Object> container = at(doc("Deployment", "slipway-worker"),
        "spec", "template", "spec", "containers", 0);
    List<Map<String, Object>> ports = at(container, "ports");
    assertEquals(config.getInt("worker.port"), ports.get(0).get("containerPort"));
    assertEquals(config.getInt("worker.metrics.port"), ports.get(1).get("containerPort"));
    assertEquals(config.getInt("worker.port"), (int) at(container, "readinessProbe", "grpc", "port"));
    assertEquals(config.getInt("worker.port"), (int) at(container, "livenessProbe", "grpc", "port"));
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
  void workerConfigurationInTheConfigMapStartsAWorker() throws Exception {
    Map<String, String> env = containerEnv();
    env.put("POD_NAME", "slipway-worker-abc");
    env.put("POD_IP", "10.1.2.3");
    Path conf = dir.resolve("worker.conf");
    Files.writeString(conf, at(doc("ConfigMap", "slipway-worker"), "data", "worker.conf"));
    // Every stage of the pipeline is created from this configuration, as at a pod's start.
    try (Worker worker = Worker.prepare(new WorkerOptions(Optional.of(conf), dir,
        Environment.of(env), new Properties(), Path.of("..").toAbsolutePath().normalize()),
        PluginRegistry.discover(), null)) {
      assertEquals(List.of("git", "buildkit", "ecr", "docker-push"), worker.pipeline().ids());
      assertEquals(Optional.of("slipway-orchestrator:50051"),
          worker.settings().orchestrator().address());
      assertEquals(Optional.of("eu-west-1"), worker.settings().region());
    }
  }

  @Test
  void buildkitdServiceIsWhereTheWorkersLook() throws Exception {
    Config config = workerConfig(Map.of());
    Map<String, Object> service = doc("Service", "slipway-buildkitd");
    int port = at(service, "spec", "ports", 0, "port");
    assertEquals("tcp://slipway-buildkitd:" + port,
        config.getString("worker.stages.buildkit.addr"));
    List<String> args = at(doc("Deployment", "slipway-buildkitd"), "spec", "template", "spec",
        "containers", 0, "args");
    assertTrue(args.contains("tcp://0.0.0.0:" + port), args.toString());
  }

  @Test
  void dockerfileExposesTheWorkerPortsAndRunsTheLauncher() throws Exception {
    String dockerfile = Files.readString(DIST.resolve("Dockerfile"));
    Config config = workerConfig(Map.of());
    assertTrue(dockerfile.contains("EXPOSE " + config.getInt("worker.port") + " "
        + config.getInt("worker.metrics.port")), dockerfile);
    assertTrue(dockerfile.contains("/opt/slipway-worker/bin/worker"));
    Map<String, Object> container = at(doc("Deployment", "slipway-worker"), "spec",
        "template", "spec", "containers", 0);
    List<String> args = at(container, "args");
    assertEquals(List.of("serve", "--config", "/etc/slipway/worker.conf"), args);
    List<Map<String, Object>> mounts = at(container, "volumeMounts");
    assertTrue(mounts.stream().anyMatch(m -> "/etc/slipway".equals(m.get("mountPath"))));
    assertFalse(dockerfile.contains("latest"), "pin base images");
  }

  private Map<String, String> containerEnv() {
    Map<String, String> env = new HashMap<>();
    List<Map<String, Object>> vars = at(doc("Deployment", "slipway-worker"),
        "spec", "template", "spec", "containers", 0, "env");
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

package dev.slipway.plugin.dockerpush;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.slipway.worker.api.RegistryCredentials;
import dev.slipway.worker.api.Secret;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.net.URI;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The digest check against stand-in registries on 127.0.0.1 that authenticate each way. */
class RegistryApiTest {
  static final String DIGEST = "sha256:" + "d".repeat(64);
  static final String MANIFEST = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}";

  HttpServer server;
  String address;
  final List<String> seen = new CopyOnWriteArrayList<>();
  final RegistryApi api = new RegistryApi(Duration.ofSeconds(5), Set.of(), Set.of());
  final Optional<RegistryCredentials> alice =
      Optional.of(new RegistryCredentials("ignored", "alice", Secret.of("alice-secret")));

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
    server.start();
    address = "127.0.0.1:" + server.getAddress().getPort();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  private ImageName.Target target(String repository, String tag) {
    return new ImageName.Target(address, repository, tag);
  }

  private static String basic(String user, String password) {
    return "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  private static void answer(HttpExchange x, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    if (x.getRequestMethod().equals("HEAD") || bytes.length == 0) {
      x.sendResponseHeaders(status, -1);
    } else {
      x.sendResponseHeaders(status, bytes.length);
      x.getResponseBody().write(bytes);
    }
    x.close();
  }

  @Test
  void basicAuthAnswersTheChallengeAndTheHeadersDigestIsTaken() throws Exception {
    server.createContext("/v2/team/app/manifests/1", x -> {
      seen.add(x.getRequestMethod() + " " + x.getRequestHeaders().getFirst("Accept") + " "
          + x.getRequestHeaders().getFirst("Authorization"));
      if (!basic("alice", "alice-secret").equals(x.getRequestHeaders().getFirst("Authorization"))) {
        x.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"stand-in\"");
        answer(x, 401, "");
        return;
      }
      x.getResponseHeaders().set("Docker-Content-Digest", DIGEST);
      answer(x, 200, MANIFEST);
    });
    assertEquals(Optional.of(DIGEST), api.manifestDigest(target("team/app", "1"), alice));
    assertEquals(2, seen.size(), seen.toString());
    assertTrue(seen.get(0).startsWith("HEAD ") && seen.get(0).endsWith(" null"), "asks without credentials first");
    for (String type : List.of("application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json")) {
      assertTrue(seen.get(1).contains(type), type + " not accepted: " + seen.get(1));
    }
  }

  @Test
  void theTokenFlowGetsABearerTokenWithTheCredentials() throws Exception {
    server.createContext("/token", x -> {
      seen.add("token " + x.getRequestURI().getQuery() + " " + x.getRequestHeaders().getFirst("Authorization"));
      if (!basic("alice", "alice-secret").equals(x.getRequestHeaders().getFirst("Authorization"))) {
        answer(x, 401, "{\"errors\":[]}");
        return;
      }
      answer(x, 200, "{\"access_token\":\"ignored\",\"token\":\"tok\\/en-123\",\"expires_in\":300}");
    });
    server.createContext("/v2/team/app/manifests/1", x -> {
      if (!"Bearer tok/en-123".equals(x.getRequestHeaders().getFirst("Authorization"))) {
        x.getResponseHeaders().set("WWW-Authenticate",
            "Bearer realm=\"http://" + address + "/token\",service=\"stand-in\",scope=\"repository:team/app:pull,push\"");
        answer(x, 401, "");
        return;
      }
      x.getResponseHeaders().set("Docker-Content-Digest", DIGEST);
      answer(x, 200, "");
    });
    assertEquals(Optional.of(DIGEST), api.manifestDigest(target("team/app", "1"), alice));
    assertEquals(List.of("token service=stand-in&scope=repository:team/app:pull " + basic("alice", "alice-secret")), seen);

    RegistryApi.RegistryException e = assertThrows(RegistryApi.RegistryException.class,
        () -> api.manifestDigest(target("team/app", "1"),
            Optional.of(new RegistryCredentials("x", "alice", Secret.of("wrong")))));
    assertEquals(PushFailures.Kind.DENIED, e.kind());
    assertTrue(!e.getMessage().contains("wrong"), e.getMessage());
  }

  /** A registry whose challenge names a token realm on the same server under another name. */
  private void realmOnAnotherHost() {
    server.createContext("/token", x -> {
      seen.add("token " + x.getRequestHeaders().getFirst("Authorization"));
      answer(x, 200, "{\"token\":\"realm-token\"}");
    });
    // The manifest and, for a ping, the API root.
    server.createContext("/v2/", x -> {
      if (!"Bearer realm-token".equals(x.getRequestHeaders().getFirst("Authorization"))) {
        // localhost is 127.0.0.1 here, but another host as far as the stage can tell.
        x.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"http://localhost:"
            + address.substring(address.lastIndexOf(':') + 1) + "/token\",service=\"x\"");
        answer(x, 401, "");
        return;
      }
      x.getResponseHeaders().set("Docker-Content-Digest", DIGEST);
      answer(x, 200, "");
    });
  }

  @Test
  void aTokenRealmOnAnotherHostIsRefusedTheCredentialsAndSaysWhereToListIt() throws Exception {
    realmOnAnotherHost();
    RegistryApi.RegistryException e = assertThrows(RegistryApi.RegistryException.class,
        () -> api.manifestDigest(target("team/app", "1"), alice));
    assertEquals(PushFailures.Kind.FAILED, e.kind(), "not retried, not taken for a refusal of the credentials");
    assertTrue(e.getMessage().contains("on another host, localhost;")
        && e.getMessage().contains("worker.stages.docker-push.token-realm-hosts")
        && e.getMessage().contains("token-realm-hosts = [\"localhost\"]"), e.getMessage());
    assertFalse(e.getMessage().contains("alice-secret"), e.getMessage());
    assertEquals(List.of(), seen, "nothing went to the other host");

    RegistryApi.RegistryException ping = assertThrows(RegistryApi.RegistryException.class,
        () -> api.ping(target("team/app", "1"), alice));
    assertTrue(ping.getMessage().contains("token-realm-hosts"), ping.getMessage());
    assertEquals(List.of(), seen, "nor from the ping");
  }

  @Test
  void withoutCredentialsATokenRealmOnAnotherHostIsAskedAnonymously() throws Exception {
    realmOnAnotherHost();
    assertEquals(Optional.of(DIGEST), api.manifestDigest(target("team/app", "1"), Optional.empty()));
    assertEquals(List.of("token null"), seen);
  }

  @Test
  void aListedTokenRealmHostGetsTheCredentials() throws Exception {
    realmOnAnotherHost();
    RegistryApi listed = new RegistryApi(Duration.ofSeconds(5), Set.of(), Set.of("LocalHost"));
    assertEquals(Optional.of(DIGEST), listed.manifestDigest(target("team/app", "1"), alice));
    assertEquals(List.of("token " + basic("alice", "alice-secret")), seen);
  }

  @Test
  void aTokenRealmMayReceiveCredentialsOnTheRegistrysOwnHostOrAListedOne() {
    assertTrue(api.realmMayReceiveCredentials("ghcr.io", "GHCR.io"));
    assertTrue(api.realmMayReceiveCredentials("127.0.0.1", "127.0.0.1"));
    assertFalse(api.realmMayReceiveCredentials("evil.amazonaws.com", "123.dkr.ecr.us-east-1.amazonaws.com"),
        "a sibling under a hosting provider's domain is anyone's");
    assertFalse(api.realmMayReceiveCredentials("auth.docker.io", "registry-1.docker.io"), "not unless listed");
    assertFalse(api.realmMayReceiveCredentials("evil.example.net", "registry.example.com"));
    assertFalse(api.realmMayReceiveCredentials("registry.example.com.evil.net", "registry.example.com"));
    assertFalse(api.realmMayReceiveCredentials("127.0.0.2", "127.0.0.1"));
    assertFalse(api.realmMayReceiveCredentials("localhost", "127.0.0.1"));
    assertFalse(api.realmMayReceiveCredentials("", "registry.example.com"));

    RegistryApi hub = new RegistryApi(Duration.ofSeconds(1), Set.of(), Set.of("auth.docker.io"));
    assertTrue(hub.realmMayReceiveCredentials("auth.docker.io", "registry-1.docker.io"));
    assertTrue(hub.realmMayReceiveCredentials("AUTH.docker.io", "registry-1.docker.io"));
    assertFalse(hub.realmMayReceiveCredentials("evil.docker.io", "registry-1.docker.io"));

    // The same host on another port is another server.
    URI registry = URI.create("https://registry.acme.test/v2/app/manifests/1");
    assertTrue(api.realmMayReceiveCredentials(URI.create("https://registry.acme.test/token"), registry));
    assertTrue(api.realmMayReceiveCredentials(URI.create("https://registry.acme.test:443/t"), registry));
    assertFalse(api.realmMayReceiveCredentials(URI.create("https://registry.acme.test:8443/t"), registry));
    URI local = URI.create("http://127.0.0.1:5000/v2/app/manifests/1");
    assertTrue(api.realmMayReceiveCredentials(URI.create("http://127.0.0.1:5000/auth"), local));
    assertFalse(api.realmMayReceiveCredentials(URI.create("http://127.0.0.1:5001/auth"), local));
  }

  @Test
  void aTokenRealmOverPlainHttpElsewhereGetsNoCredentials() throws Exception {
    server.createContext("/v2/team/app/manifests/1", x -> {
      x.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"http://auth.example.com/token\",service=\"x\"");
      answer(x, 401, "");
    });
    RegistryApi.RegistryException e = assertThrows(RegistryApi.RegistryException.class,
        () -> api.manifestDigest(target("team/app", "1"), alice));
    assertTrue(e.getMessage().contains("plain http; the credentials are not sent there"), e.getMessage());
  }

  @Test
  void withoutADigestHeaderOnHeadTheBodyOfAGetIsHashed() throws Exception {
    server.createContext("/v2/team/app/manifests/1", x -> {
      seen.add(x.getRequestMethod());
      answer(x, 200, MANIFEST);
    });
    String expected = "sha256:" + HexFormat.of().formatHex(
        MessageDigest.getInstance("SHA-256").digest(MANIFEST.getBytes(StandardCharsets.UTF_8)));
    assertEquals(Optional.of(expected), api.manifestDigest(target("team/app", "1"), Optional.empty()));
    assertEquals(List.of("HEAD", "GET"), seen);
  }

  @Test
  void statusesAreSortedForTheStage() throws Exception {
    server.createContext("/v2/missing/manifests/1", x -> answer(x, 404, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}"));
    server.createContext("/v2/busy/manifests/1", x -> answer(x, 503, ""));
    server.createContext("/v2/slow/manifests/1", x -> answer(x, 429, ""));
    server.createContext("/v2/odd/manifests/1", x -> answer(x, 400, ""));
    server.createContext("/v2/locked/manifests/1", x -> {
      x.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"stand-in\"");
      answer(x, 401, "");
    });
    assertEquals(Optional.empty(), api.manifestDigest(target("missing", "1"), Optional.empty()));
    assertEquals(PushFailures.Kind.TRANSIENT, kindOf("busy", Optional.empty()));
    assertEquals(PushFailures.Kind.TRANSIENT, kindOf("slow", Optional.empty()));
    assertEquals(PushFailures.Kind.FAILED, kindOf("odd", Optional.empty()));
    assertEquals(PushFailures.Kind.DENIED, kindOf("locked", Optional.empty()));
    assertEquals(PushFailures.Kind.DENIED, kindOf("locked", alice));
  }

  @Test
  void aPingAuthenticatesAsAPushWould() throws Exception {
    server.createContext("/v2/", x -> {
      seen.add(x.getRequestMethod() + " " + x.getRequestURI().getPath());
      if (!basic("alice", "alice-secret").equals(x.getRequestHeaders().getFirst("Authorization"))) {
        x.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"stand-in\"");
        answer(x, 401, "");
        return;
      }
      answer(x, 200, "{}");
    });
    api.ping(target("team/app", "1"), alice);
    assertEquals(List.of("GET /v2/", "GET /v2/"), seen);
    RegistryApi.RegistryException e = assertThrows(RegistryApi.RegistryException.class,
        () -> api.ping(target("team/app", "1"), Optional.of(new RegistryCredentials("x", "alice", Secret.of("nope")))));
    assertEquals(PushFailures.Kind.DENIED, e.kind());
  }

  @Test
  void aRegistryThatIsNotThereIsTransient() throws Exception {
    server.stop(0);
    assertEquals(PushFailures.Kind.TRANSIENT, kindOf("team/app", Optional.empty()));
    RegistryApi.RegistryException e = assertThrows(RegistryApi.RegistryException.class,
        () -> api.ping(target("team/app", "1"), Optional.empty()));
    assertTrue(e.getMessage().endsWith("failed: connection refused"), e.getMessage());
  }

  private PushFailures.Kind kindOf(String repository, Optional<RegistryCredentials> credentials) throws Exception {
    return assertThrows(RegistryApi.RegistryException.class,
        () -> api.manifestDigest(target(repository, "1"), credentials)).kind();
  }

  @Test
  void plainHttpOnlyForLoopbackAndInsecureRegistries() {
    RegistryApi insecure = new RegistryApi(Duration.ofSeconds(1), Set.of("registry.internal:5000", "10.1.2.3"), Set.of());
    assertEquals("http", insecure.scheme("127.0.0.1:5000"));
    assertEquals("http", insecure.scheme("127.1.2.3"));
    assertEquals("http", insecure.scheme("localhost:5000"));
    assertEquals("http", insecure.scheme("[::1]:5000"));
    assertEquals("http", insecure.scheme("registry.internal:5000"));
    assertEquals("http", insecure.scheme("10.1.2.3:5000"));
    assertEquals("https", insecure.scheme("registry.internal:5001"));
    assertEquals("https", insecure.scheme("registry.example.com"));
    assertEquals("https", insecure.scheme("127.0.0.1.nip.io"));
    assertEquals("https://123.dkr.ecr.eu-west-1.amazonaws.com/v2/team/app/manifests/1",
        insecure.manifestUri(new ImageName.Target("123.dkr.ecr.eu-west-1.amazonaws.com", "team/app", "1")).toString());
    assertEquals("https://registry-1.docker.io/v2/library/busybox/manifests/latest",
        insecure.manifestUri(new ImageName.Target("docker.io", "busybox", "latest")).toString());
  }
}

#!/usr/bin/env bash
# The main job, end to end, on this machine: builds Slipway if needed, starts a Docker engine and
# a registry on 127.0.0.1 (scripts/test-services.sh), serves a sample repository over smart HTTP
# with a token, starts a worker from dist/target/slipway-worker over TLS with two callers, submits
# a job with `bin/worker submit` as one caller, shows the other refused for a repository outside its
# scope, then pulls the pushed image back by its digest and runs it.
# Everything it started is stopped at the end. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
IMAGE_DIR="$ROOT/dist/target/slipway-worker"
WORK=$(mktemp -d /tmp/slipway-demo.XXXXXX)
export SLIPWAY_STATE_DIR="${SLIPWAY_STATE_DIR:-/tmp/slipway-services}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

pids=()
started_services=false
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ "$started_services" == true ]]; then
    scripts/test-services.sh down >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say "1. Build (skipped when dist/target/slipway-worker is up to date)"
if [[ ! -x "$IMAGE_DIR/bin/worker" ]] \
    || [[ -n "$(find pom.xml proto worker-* plugin-* dist scripts/build.sh -newer "$IMAGE_DIR/bin/worker" \
                 -type f -not -path '*/target/*' -print -quit)" ]]; then
  mvn -B -q -ntp package -DskipTests
fi

say "2. Docker engine and registry on 127.0.0.1"
if ! scripts/test-services.sh status >/dev/null 2>&1; then started_services=true; fi
scripts/test-services.sh up
# shellcheck disable=SC1091
source "$SLIPWAY_STATE_DIR/env"

say "3. A sample repository, served over smart HTTP with a token"
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
git init -q --bare -b main "$WORK/repos/hello.git"
git init -q -b main "$WORK/src"
cat > "$WORK/src/Dockerfile" <<'DOCKERFILE'
FROM local/busybox:1
ARG GREETING=Hello
COPY message.txt /message.txt
RUN echo "$GREETING from an image that Slipway built and pushed" > /greeting.txt
CMD ["sh", "-c", "cat /greeting.txt /message.txt"]
DOCKERFILE
printf '.git\n' > "$WORK/src/.dockerignore"
printf 'Cloned from the sample repository with a token, built with BuildKit, pulled back by digest.\n' \
  > "$WORK/src/message.txt"
git -C "$WORK/src" add -A
git -C "$WORK/src" -c user.name=demo -c user.email=demo@example.test commit -q -m "sample app"
git -C "$WORK/src" push -q "$WORK/repos/hello.git" main
GIT_DEMO_TOKEN="demo-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GIT_DEMO_TOKEN
python3 scripts/git-http-server.py "$WORK/repos" "$WORK/git.port" </dev/null >"$WORK/git.log" 2>&1 &
git_pid=$!
pids+=("$git_pid")
for _ in $(seq 100); do
  [[ -s "$WORK/git.port" ]] && break
  kill -0 "$git_pid" 2>/dev/null || { cat "$WORK/git.log" >&2; echo "the git server did not start" >&2; exit 1; }
  sleep 0.1
done
GIT_PORT=$(cat "$WORK/git.port")
echo "git server: http://127.0.0.1:$GIT_PORT/hello.git (user x-access-token, token in \$GIT_DEMO_TOKEN)"

say "4. TLS and two callers: 'ci' may push demo/*, 'intern' only sandbox/*"
# A CA and the worker's certificate (EC P-256, PKCS#8 key, SAN 127.0.0.1), and one bearer token
# per caller, in files only root can read. Nothing of it outlives the demo.
mkdir -m 700 "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=demo CA" \
  -keyout "$WORK/tls/ca.key" -out "$WORK/tls/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=slipway demo worker" \
  -keyout "$WORK/tls/worker.key" -out "$WORK/tls/worker.csr" 2>/dev/null
openssl x509 -req -in "$WORK/tls/worker.csr" -CA "$WORK/tls/ca.pem" -CAkey "$WORK/tls/ca.key" \
  -CAcreateserial -days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
  -out "$WORK/tls/worker.pem" 2>/dev/null
(umask 077; openssl rand -hex 32 > "$WORK/tls/ci.token"; openssl rand -hex 32 > "$WORK/tls/intern.token")
echo "CA $WORK/tls/ca.pem; tokens $WORK/tls/ci.token and $WORK/tls/intern.token"

say "5. A worker from the distribution over TLS: pipeline git -> buildkit -> docker-push"
export REGISTRY_PASSWORD="$SLIPWAY_REGISTRY_PASSWORD"
cat > "$WORK/worker.conf" <<CONF
worker {
  bind-address = 127.0.0.1
  port = 0
  workspace-root = "$WORK/workspaces"
  pipeline = [git, buildkit, docker-push]
  tls { cert-file = "$WORK/tls/worker.pem", key-file = "$WORK/tls/worker.key" }
  callers = [
    { name = ci, token-file = "$WORK/tls/ci.token",
      allowed-repositories = ["http://127.0.0.1:*/hello"],
      allowed-push-repositories = ["$SLIPWAY_REGISTRY/demo/*"] }
    { name = intern, token-file = "$WORK/tls/intern.token",
      allowed-repositories = ["http://127.0.0.1:*/hello"],
      allowed-push-repositories = ["$SLIPWAY_REGISTRY/sandbox/*"] }
  ]
  stages {
    git.allowed-schemes = [http]          # the demo's git server is plain HTTP on loopback
    buildkit { docker-host = "$DOCKER_HOST", network = none }   # RUN steps get no network
    docker-push {
      docker-host = "$DOCKER_HOST"
      registry = "$SLIPWAY_REGISTRY"
      auth { username = "$SLIPWAY_REGISTRY_USER", password = \${?REGISTRY_PASSWORD} }
    }
  }
}
CONF
# exec, so that $! is the worker itself and the cleanup's SIGTERM reaches it (it drains, exits 0).
(cd "$WORK" && exec "$IMAGE_DIR/bin/worker" serve --config "$WORK/worker.conf" 2>"$WORK/worker.log") &
worker_pid=$!
pids+=("$worker_pid")
WORKER_PORT=""
for _ in $(seq 300); do
  kill -0 "$worker_pid" 2>/dev/null || break
  WORKER_PORT=$(grep -oE 'listening on 127.0.0.1:[0-9]+ ' "$WORK/worker.log" 2>/dev/null | grep -oE '[0-9]+ $' | tr -d ' ' || true)
  [[ -n "$WORKER_PORT" ]] && break
  sleep 0.1
done
[[ -n "$WORKER_PORT" ]] || { cat "$WORK/worker.log"; echo "the worker did not start" >&2; exit 1; }
grep -m1 'listening on' "$WORK/worker.log" | sed 's/^.* - //'
as_ci=(--target "127.0.0.1:$WORKER_PORT" --ca-file "$WORK/tls/ca.pem" --token-file "$WORK/tls/ci.token")
as_intern=(--target "127.0.0.1:$WORKER_PORT" --ca-file "$WORK/tls/ca.pem" --token-file "$WORK/tls/intern.token")
"$IMAGE_DIR/bin/worker" ping "${as_ci[@]}"

say "6. 'intern' asks to push demo/hello, outside its scope: refused before anything is cloned"
set +e
"$IMAGE_DIR/bin/worker" submit "${as_intern[@]}" \
  --repo "http://127.0.0.1:$GIT_PORT/hello.git" --token-env GIT_DEMO_TOKEN --image demo/hello:1.0 \
  > "$WORK/refused.out" 2>&1
refused=$?
set -e
cat "$WORK/refused.out"
[[ $refused == 3 ]] && grep -q PERMISSION_DENIED "$WORK/refused.out" \
  || { echo "expected PERMISSION_DENIED (exit 3), got exit $refused" >&2; exit 1; }

say "7. 'ci' submits the job over TLS"
"$IMAGE_DIR/bin/worker" submit "${as_ci[@]}" \
  --repo "http://127.0.0.1:$GIT_PORT/hello.git" --token-env GIT_DEMO_TOKEN \
  --image demo/hello:1.0 --build-arg GREETING=Hi | tee "$WORK/submit.out"
DIGEST=$(grep -oE '^digest: +sha256:[0-9a-f]{64}' "$WORK/submit.out" | awk '{print $2}')
URI=$(grep -oE '^image: +[^ ]+' "$WORK/submit.out" | awk '{print $2}')

say "8. Pull the pushed image back by its digest and run it"
REPO="${URI%:*}"
export DOCKER_CONFIG="$WORK/docker-config"   # the login stays in the demo's temp folder
printf '%s' "$SLIPWAY_REGISTRY_PASSWORD" | \
  "$SLIPWAY_DOCKER_CLI" login -u "$SLIPWAY_REGISTRY_USER" --password-stdin "$SLIPWAY_REGISTRY" >/dev/null
"$SLIPWAY_DOCKER_CLI" pull -q "$REPO@$DIGEST"
"$SLIPWAY_DOCKER_CLI" run --rm --network=none "$REPO@$DIGEST"
"$SLIPWAY_DOCKER_CLI" rmi -f "$REPO@$DIGEST" >/dev/null 2>&1 || true
say "Done: $URI ($DIGEST)"

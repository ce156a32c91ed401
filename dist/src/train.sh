#!/usr/bin/env bash
# Writes the class-data cache of a linked image from a training run.
#
#   train.sh IMAGE_DIR [--no-job]
#
# The training run is `bin/worker serve` with the four-stage pipeline (so that every plugin's
# start-up is in it), then one Ping over gRPC (the server's connection and HTTP/2 path, as a
# health probe takes it) and one job, which the git stage fails at once (a closed loopback port):
# admission, the job's threads, the git stage's transport and the error path of a real job. The
# stages are configured so that nothing outside the machine is needed: dummy AWS keys, ECR and
# the registry on closed loopback ports, /bin/sh as the docker CLI (never run). Then SIGTERM,
# and the JVM writes the cache as it exits:
#   - an image of JDK 25 or later: lib/slipway.aot, an AOT cache (JEP 483/514/515): the classes
#     loaded and linked, the boot module graph, and method profiles;
#   - an image of JDK 17: lib/slipway.jsa, a dynamic AppCDS archive (-XX:ArchiveClassesAtExit).
# bin/worker uses whichever is present. --no-job leaves the job out (start-up and Ping only).
set -euo pipefail
image=$1 with_job=true
[[ "${2:-}" == "--no-job" ]] && with_job=false
major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$image/release")
[[ -n "$major" ]] || { echo "train: no JAVA_VERSION in $image/release" >&2; exit 1; }
rm -f "$image/lib/slipway.aot" "$image/lib/slipway.jsa"
train=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$train"
}
trap cleanup EXIT
if (( major >= 25 )); then
  cache="$image/lib/slipway.aot"
  # Its warnings (classes it cannot keep: JFR events, proxies) are shown only if no cache results.
  record="-XX:AOTCacheOutput=$cache -Xlog:aot*=warning:file=$train/aot.log"
else
  cache="$image/lib/slipway.jsa"
  record="-XX:ArchiveClassesAtExit=$cache -Xlog:cds*=off -Xlog:cds+dynamic*=off"
fi
cat > "$train/worker.conf" <<CONF
worker {
  bind-address = 127.0.0.1, port = 0, workspace-root = "$train/ws"
  pipeline = [git, buildkit, ecr, docker-push]
  stages {
    buildkit { docker-cli = "/bin/sh" }
    ecr { region = eu-west-1, endpoint-override = "http://127.0.0.1:9" }
    docker-push { registry = "127.0.0.1:9" }
  }
}
CONF
# The dummy keys reach the training worker only; the ecr stage checks that some exist.
AWS_ACCESS_KEY_ID=AKIATRAININGRUN00000 AWS_SECRET_ACCESS_KEY=training-run-not-a-secret \
  JAVA_OPTS="$record" SLIPWAY_NO_APPCDS=1 \
  "$image/bin/worker" serve --config "$train/worker.conf" >/dev/null 2>"$train/log" &
pid=$!
port=""
for _ in $(seq 600); do
  port=$(grep -oE 'listening on 127.0.0.1:[0-9]+ ' "$train/log" | grep -oE '[0-9]+ $' | tr -d ' ' || true)
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "train: the training run did not start:" >&2; cat "$train/log" >&2; exit 1
fi
# Clients are JVMs of their own (no cache: SLIPWAY_NO_APPCDS); only the server is recorded.
SLIPWAY_NO_APPCDS=1 "$image/bin/worker" ping --target "127.0.0.1:$port" >"$train/ping" 2>&1 \
  || { echo "train: Ping failed:" >&2; cat "$train/ping" >&2; exit 1; }
if $with_job; then
  # Fails in the git stage (nothing listens on port 9), as it should; its exit code is the job's.
  SLIPWAY_NO_APPCDS=1 "$image/bin/worker" submit --target "127.0.0.1:$port" --plain \
    --repo http://127.0.0.1:9/training.git --image training/app:1 >"$train/job" 2>&1 || true
  grep -q 'git' "$train/job" || { echo "train: the job did not run:" >&2; cat "$train/job" >&2; exit 1; }
fi
kill -TERM "$pid"
wait "$pid" || { echo "train: the training run did not stop cleanly:" >&2; cat "$train/log" >&2; exit 1; }
pid=""
if [[ ! -s "$cache" ]]; then
  echo "train: no cache was written; the image works without it" >&2
  cat "$train"/aot.log* >&2 2>/dev/null || true
  exit 0
fi
echo "train: $cache ($(du -h "$cache" | cut -f1))"

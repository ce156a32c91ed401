#!/usr/bin/env bash
# Start-up time and idle memory of the worker's runtime image.
#
#   scripts/bench-startup.sh [--four] [--phases] [RUNS] [IMAGE_DIR]
#
# For each run: launches IMAGE_DIR/bin/worker serve (loopback, a free port) and measures the time
# from launch until the standard gRPC health service answers SERVING (polled with curl over
# HTTP/2, every 5 ms), and the CPU time the process had used by then (user + system, all
# threads: less sensitive than wall time to a machine that other work keeps busy); then, after 5 s
# idle, the resident memory of the worker process (VmRSS). Prints each run and the medians.
#
#   --four    the pipeline [git, buildkit, ecr, docker-push] instead of [git, buildkit]. The ecr
#             stage gets dummy AWS keys, a region and an endpoint-override on a closed loopback
#             port; docker-push a registry on loopback. Neither is called: becoming SERVING needs
#             no Docker engine, no registry and no AWS.
#   --phases  also print the runtime's own start-up phases (its debug line "start-up phases").
#
# Builds nothing: run `mvn -B package -DskipTests` first. JAVA_OPTS is passed through (e.g. to
# compare without the class-data archive: SLIPWAY_NO_APPCDS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
FOUR="" PHASES=""
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --four) FOUR=1 ;;
    --phases) PHASES=1 ;;
    *) echo "unknown option $1; usage: $0 [--four] [--phases] [RUNS] [IMAGE_DIR]" >&2; exit 2 ;;
  esac
  shift
done
RUNS=${1:-5}
IMAGE=${2:-dist/target/slipway-worker}
[[ -x "$IMAGE/bin/worker" ]] || { echo "no image at $IMAGE; run mvn -B package -DskipTests" >&2; exit 1; }
WORK=$(mktemp -d /tmp/slipway-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [[ -n "$FOUR" ]]; then
  cat > "$WORK/worker.conf" <<CONF
worker {
  bind-address = 127.0.0.1, port = 0, workspace-root = "$WORK/ws"
  pipeline = [git, buildkit, ecr, docker-push]
  stages {
    ecr { region = eu-west-1, endpoint-override = "http://127.0.0.1:9" }
    docker-push { registry = "127.0.0.1:9" }
  }
}
CONF
  pipeline="[git, buildkit, ecr, docker-push]"
else
  cat > "$WORK/worker.conf" <<CONF
worker { bind-address = 127.0.0.1, port = 0, workspace-root = "$WORK/ws", pipeline = [git, buildkit] }
CONF
  pipeline="[git, buildkit]"
fi
[[ -n "$PHASES" ]] && echo 'worker.log.level = debug' >> "$WORK/worker.conf"
# An empty HealthCheckRequest in gRPC framing: no compression, length 0.
printf '\0\0\0\0\0' > "$WORK/health.req"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_ms() { date +%s%3N; }
ticks=$(getconf CLK_TCK)

echo "pipeline $pipeline, image $IMAGE, $RUNS runs"
: > "$WORK/startup"; : > "$WORK/cpu"; : > "$WORK/rss"
for run in $(seq "$RUNS"); do
  start=$(now_ms)
  # Dummy AWS keys for the ecr stage only: it checks that credentials exist, and calls nobody.
  AWS_ACCESS_KEY_ID=AKIABENCHSTARTUP0000 AWS_SECRET_ACCESS_KEY=bench-startup-not-a-secret \
    "$IMAGE/bin/worker" serve --config "$WORK/worker.conf" 2>"$WORK/log" &
  pid=$!
  port=""
  ready=""
  while [[ -z "$ready" ]]; do
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/log"; echo "worker died" >&2; exit 1; }
    if [[ -z "$port" ]]; then
      # The whole line: a port read from a line still being written would be cut short.
      port=$(grep -oE 'listening on 127.0.0.1:[0-9]+ ' "$WORK/log" | grep -oE '[0-9]+ $' | tr -d ' ' || true)
    fi
    if [[ -n "$port" ]] && curl -s --http2-prior-knowledge -X POST \
        -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @"$WORK/health.req" \
        "http://127.0.0.1:$port/grpc.health.v1.Health/Check" -o "$WORK/health.out" 2>/dev/null \
        && [[ "$(od -An -tx1 "$WORK/health.out" | tr -d ' \n')" == *0801 ]]; then
      ready=$(now_ms)
    else
      sleep 0.005
    fi
  done
  cpu_ms=$(awk -v t="$ticks" '{print int(($14 + $15) * 1000 / t)}' "/proc/$pid/stat")
  sleep 5
  rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run $run: the worker did not stop within 30 s of SIGTERM" >&2; kill -KILL "$pid"; exit 1
  fi
  wait "$pid" || true
  echo "run $run: SERVING after $((ready - start)) ms (CPU $cpu_ms ms), idle RSS $((rss_kb / 1024)) MiB"
  if [[ -n "$PHASES" ]]; then
    grep -oE 'start-up phases.*' "$WORK/log" | sed 's/^/  /' || echo "  (no start-up phases line)"
  fi
  echo $((ready - start)) >> "$WORK/startup"; echo "$cpu_ms" >> "$WORK/cpu"
  echo $((rss_kb / 1024)) >> "$WORK/rss"
done
echo "median of $RUNS: launch to SERVING $(median < "$WORK/startup") ms (CPU $(median < "$WORK/cpu") ms), idle RSS $(median < "$WORK/rss") MiB"

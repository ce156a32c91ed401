#!/usr/bin/env bash
# How fast a busy worker answers Ping.
#
#   scripts/bench-ping.sh [PINGS] [IMAGE_DIR]
#
# Starts the worker of the runtime image with the pipeline [git], and a loopback git server
# (scripts/git-http-server.py) that holds every pack back for 20 s, so that a submitted clone keeps
# the worker BUSY. Then calls Ping PINGS times (default 200) over HTTP/2 with curl, checks that
# each answer says BUSY, and prints the median, p90 and max of curl's total time per call (which
# includes curl's own connection set-up). Needs python3 and git; run `mvn -B package` first.
set -euo pipefail
cd "$(dirname "$0")/.."
PINGS=${1:-200}
IMAGE=$(cd "${2:-dist/target/slipway-worker}" 2>/dev/null && pwd || echo "${2:-dist/target/slipway-worker}")
[[ -x "$IMAGE/bin/worker" ]] || { echo "no image at $IMAGE; run mvn -B package -DskipTests" >&2; exit 1; }
WORK=$(mktemp -d /tmp/slipway-ping.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

git init -q --bare -b main "$WORK/repos/slow.git"
git init -q -b main "$WORK/src"
echo slow > "$WORK/src/README"
git -C "$WORK/src" add -A
git -C "$WORK/src" -c user.name=bench -c user.email=bench@example.test commit -q -m slow
git -C "$WORK/src" push -q "$WORK/repos/slow.git" main
export GIT_DEMO_TOKEN="bench-$RANDOM$RANDOM" GIT_DEMO_DELAY=20
python3 scripts/git-http-server.py "$WORK/repos" "$WORK/git.port" </dev/null >"$WORK/git.log" 2>&1 &
pids+=($!)
cat > "$WORK/worker.conf" <<CONF
worker { bind-address = 127.0.0.1, port = 0, workspace-root = "$WORK/ws", pipeline = [git]
  stages.git.allowed-schemes = [http] }
CONF
(cd "$WORK" && exec "$IMAGE/bin/worker" serve --config "$WORK/worker.conf" 2>"$WORK/worker.log") &
pids+=($!)
port=""
for _ in $(seq 300); do
  port=$(grep -oE 'listening on 127.0.0.1:[0-9]+ ' "$WORK/worker.log" 2>/dev/null | grep -oE '[0-9]+ $' | tr -d ' ' || true)
  [[ -n "$port" && -s "$WORK/git.port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { cat "$WORK/worker.log" >&2; exit 1; }
"$IMAGE/bin/worker" submit --target "127.0.0.1:$port" --plain --token-env GIT_DEMO_TOKEN \
  --repo "http://127.0.0.1:$(cat "$WORK/git.port")/slow.git" --image bench/slow:1 \
  >"$WORK/submit.out" 2>&1 &
pids+=($!)

# An empty PingRequest in gRPC framing; a BUSY answer holds field 2 = 2 (bytes 10 02).
printf '\0\0\0\0\0' > "$WORK/ping.req"
ping_once() {
  curl -s --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @"$WORK/ping.req" -o "$WORK/ping.out" -w '%{time_total}\n' \
    "http://127.0.0.1:$port/slipway.worker.v1.JobService/Ping"
}
for _ in $(seq 100); do
  ping_once >/dev/null
  [[ "$(od -An -tx1 "$WORK/ping.out" | tr -d ' \n')" == *1002* ]] && break
  sleep 0.1
done
: > "$WORK/times"
for _ in $(seq "$PINGS"); do
  ping_once >> "$WORK/times"
  [[ "$(od -An -tx1 "$WORK/ping.out" | tr -d ' \n')" == *1002* ]] \
    || { echo "the worker was not BUSY during the run" >&2; exit 1; }
done
sort -n "$WORK/times" | awk -v n="$PINGS" '{t[NR]=$1*1000} END {
  printf "Ping while BUSY, %d calls: median %.1f ms, p90 %.1f ms, max %.1f ms\n",
    n, t[int((n+1)/2)], t[int(n*0.9)], t[n] }'

#!/usr/bin/env bash
# The benchmark of issue 12: the worker of the runtime image against the raw tools doing the same
# job by hand on the same machine, all over 127.0.0.1.
#
#   scripts/bench.sh [--rounds N] [--repo PATH_OR_URL] [--only LIST] [--pings N]
#                    [--image-dir DIR] [--worker-conf FILE] [--summary FILE] [--seed N]
#                    [--commits N] [--keep]
#
#   --rounds N        rounds per figure, each one worker job and one raw job (default $ROUNDS or 5;
#                     the issue asks for at least 5: fewer only to try the script)
#   --repo P|URL      the repository to build (default: one this script generates, --commits
#                     commits from --seed, about 37 MiB). A path or URL is cloned (bare) once
#                     into the work folder and served from there; a URL is the only traffic
#                     that leaves the machine, and only if you give one.
#   --only LIST       comma-separated sections: clone,cold,repeat,ping,startup (default: all)
#   --pings N         at least this many Ping calls during builds (default $PINGS or 200): one
#                     every 20 ms through a whole heavy build, another build (3 at most) if fewer
#   --image-dir DIR   the jlink image (default dist/target/slipway-worker)
#   --worker-conf F   a HOCON file included at the end of every worker configuration, e.g. to
#                     switch a cache on or off for a before/after comparison
#   --summary FILE    also write the machine-readable summary there
#   --keep            keep the work folder (logs, request files) instead of removing it
#   (WARMUP=N)        untimed warm-up jobs per worker before the figures (default 3; see below)
#
# Needs root (scripts/test-services.sh installs and starts the Docker engine and the registry),
# python3, git and curl; builds nothing (run `mvn -B -ntp install -DskipTests` first).
#
# What it measures, interleaved worker, raw, worker, raw ... for each figure:
#   clone-cold      the git stage ([git]-only worker, RunJob call to response) vs
#                   `git clone --depth 1 --branch B`; a new repository URL every round, so that no
#                   cache of the worker's can hold it
#   clone-cached    the same on one URL the worker has cloned before (its cache, if it has one)
#                   vs the same `git clone --depth 1` (the CLI has no cache to use)
#   cold-W          a whole job: clone, build, push. Fresh workspace, new image repository in the
#                   registry, `docker builder prune -af` before each side's job, new repository URL
#   repeat-W        the same commit again into the same image repository; both keep their caches
#                   (the engine's build cache, the registry's layers, the worker's own caches); the
#                   raw side clones afresh each time, as a CI job without a cache does
#   change-W        a new commit that changes one file (.bench/small.txt, which both workloads
#                   copy), on a branch of each side's own, so that neither builds what the other
#                   just built into the shared build cache
#   W = small: FROM local/busybox:1 + COPY of one file;
#       heavy: FROM local/busybox:1 + a RUN that writes a 200 MiB layer of /dev/urandom + COPY . /src
#   ping-build      Ping latency while a heavy build runs: scripts/bench-grpc.py ping, one HTTP/2
#                   connection as a client's channel, a call every 20 ms from clone to push;
#                   answers that say BUSY count
#   startup-2stage, startup-4stage  launch of bin/worker serve to the first SERVING health answer
#   rss-2stage, rss-4stage          VmRSS of the worker 5 s after SERVING, idle
# The worker's side is timed by curl (-w %{time_total}) around one unary RunJob: the RPC itself,
# without any client start-up. The raw side is timed by bash ($EPOCHREALTIME) around
#   git clone --depth 1 --branch B URL DIR
#   DOCKER_BUILDKIT=1 docker build --network none -f DIR/DOCKERFILE -t REG/REPO:TAG DIR
#   docker login --password-stdin REG      (a throwaway DOCKER_CONFIG per job)
#   docker push REG/REPO:TAG
# The worker's call includes its own clean-up (workspace, local tags); the raw side's clean-up
# (rm -rf DIR, docker rmi) runs after its clock stops. After each worker job the script waits
# until the worker's CPU time stops moving (work after the answer: a ready checkout for the next
# job, deleting the last checkout), reported as worker.after_answer, before the raw side starts.
#
# At the end: a table, then a block between `--- summary ---` and `--- end ---` of `meta KEY=VALUE`
# and `figure NAME key=value ...` lines (unit, rounds, worker.median/min/max, raw.median/min/max,
# ratio = worker median / raw median, pair_ratio.median/min/max over the rounds' worker/raw pairs,
# worker.job_duration.median and worker.stage.<id>.median from the JobResponse,
# worker.outside_stages.median = job duration - its stages'; or median/min/max, or p50/p99/max),
# then `target FIGURE KEY=VALUE limit=... [goal=...] met=yes|no [off=+N%]` per target of issue 12.
#
# Everything it starts listens on 127.0.0.1 and is stopped at the end (also on Ctrl-C); the work
# folder is removed and the manifests it pushed are deleted from the registry (their blobs stay
# until the registry's garbage collection). `docker builder prune -af` empties the engine's whole
# build cache, other users' included: run it on a machine of its own for figures that count.
set -euo pipefail
CALLER_DIR=$(pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-3}
PINGS=${PINGS:-200}
REPO_SRC=""
ONLY="clone,cold,repeat,ping,startup"
IMAGE_DIR="dist/target/slipway-worker"
WORKER_CONF_EXTRA=""
SUMMARY_FILE=""
SEED=12
COMMITS=3000
KEEP=false
ARGS="$*"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
die() {
  printf 'bench.sh: error: %s\n' "$*" >&2
  exit 1
}
need_value() { (($2 >= 2)) || die "option $1 needs a value"; }
while (($# > 0)); do
  case "$1" in
  --rounds) need_value "$1" $# && ROUNDS="$2" && shift 2 ;;
  --repo) need_value "$1" $# && REPO_SRC="$2" && shift 2 ;;
  --only) need_value "$1" $# && ONLY="$2" && shift 2 ;;
  --pings) need_value "$1" $# && PINGS="$2" && shift 2 ;;
  --image-dir) need_value "$1" $# && IMAGE_DIR="$2" && shift 2 ;;
  --worker-conf) need_value "$1" $# && WORKER_CONF_EXTRA="$2" && shift 2 ;;
  --summary) need_value "$1" $# && SUMMARY_FILE="$2" && shift 2 ;;
  --seed) need_value "$1" $# && SEED="$2" && shift 2 ;;
  --commits) need_value "$1" $# && COMMITS="$2" && shift 2 ;;
  --keep) KEEP=true && shift ;;
  -h | --help) usage ;;
  *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number, not '$WARMUP'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds (or ROUNDS) must be a positive whole number, not '$ROUNDS'"
[[ $PINGS =~ ^[1-9][0-9]*$ ]] || die "--pings (or PINGS) must be a positive whole number, not '$PINGS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed must be a whole number, not '$SEED'"
[[ $COMMITS =~ ^[1-9][0-9]*$ ]] || die "--commits must be a positive whole number, not '$COMMITS'"
for section in ${ONLY//,/ }; do
  case "$section" in clone | cold | repeat | ping | startup) ;;
  *) die "--only: '$section' is not one of clone, cold, repeat, ping, startup" ;;
  esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
# Paths given on the command line are relative to where the script was called from.
from_caller() { [[ $1 == /* ]] && printf '%s' "$1" || printf '%s/%s' "$CALLER_DIR" "$1"; }
[[ $IMAGE_DIR == dist/target/slipway-worker ]] || IMAGE_DIR=$(from_caller "$IMAGE_DIR")
[[ -z $WORKER_CONF_EXTRA ]] || WORKER_CONF_EXTRA=$(from_caller "$WORKER_CONF_EXTRA")
[[ -z $SUMMARY_FILE ]] || SUMMARY_FILE=$(from_caller "$SUMMARY_FILE")
# A --repo that names an existing folder is a path; anything else goes to git as it is (a URL).
[[ -z $REPO_SRC || ! -d $(from_caller "$REPO_SRC") ]] || REPO_SRC=$(cd "$(from_caller "$REPO_SRC")" && pwd)
IMAGE_DIR=$(cd "$IMAGE_DIR" 2>/dev/null && pwd) || die "no image folder $IMAGE_DIR; run mvn -B -ntp install -DskipTests"
[[ -x $IMAGE_DIR/bin/worker ]] || die "no $IMAGE_DIR/bin/worker; run mvn -B -ntp install -DskipTests"
[[ -z $WORKER_CONF_EXTRA || -r $WORKER_CONF_EXTRA ]] || die "--worker-conf $WORKER_CONF_EXTRA is not a readable file"
[[ $(id -u) -eq 0 ]] || die "run as root: scripts/test-services.sh installs and starts the Docker engine and the registry"
for tool in python3 git curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y $tool)"
done
((ROUNDS >= 5)) || printf 'bench.sh: warning: %d rounds; the issue asks for at least 5 (figures only indicative)\n' "$ROUNDS" >&2

umask 077
WORK=$(mktemp -d /tmp/slipway-bench.XXXXXX)
RUNID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
STARTED=$EPOCHREALTIME
pids=()
: >"$WORK/pushed"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }

# Stops what this script started, by pid: SIGTERM, then SIGKILL after 15 s.
stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Forgets a pid once it has been waited for, so that the clean-up never signals a pid the kernel
# may have given to another process since.
untrack() {
  local keep=() p
  for p in "${pids[@]+"${pids[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
  local rc=$? pid line repo ref digest
  trap - EXIT INT TERM
  for pid in "${pids[@]+"${pids[@]}"}"; do stop_pid "$pid"; done
  # The manifests this run pushed (best effort): the registry is shared with the tests.
  if [[ -s $WORK/pushed && -n ${SLIPWAY_REGISTRY:-} ]]; then
    sort -u "$WORK/pushed" | while read -r line; do
      repo=${line%:*}
      ref=${line##*:}
      digest=$(registry_curl -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$SLIPWAY_REGISTRY/v2/$repo/manifests/$ref" 2>/dev/null |
        tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest" {print $2}') || true
      if [[ -n $digest ]]; then
        registry_curl -X DELETE "http://$SLIPWAY_REGISTRY/v2/$repo/manifests/$digest" -o /dev/null 2>/dev/null || true
      fi
    done
  fi
  if [[ $KEEP == true ]]; then
    printf 'bench.sh: work folder kept: %s\n' "$WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'printf "bench.sh: failed at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

# curl to the registry with its credentials from stdin, not from the arguments.
registry_curl() {
  printf 'user = "%s:%s"\n' "$SLIPWAY_REGISTRY_USER" "$SLIPWAY_REGISTRY_PASSWORD" |
    curl -s -K - -m 30 "$@"
}

# ---------------------------------------------------------------------------------------------
say "Services: Docker engine and registry on 127.0.0.1 (scripts/test-services.sh up)"
scripts/test-services.sh up >"$WORK/services.log" 2>&1 || {
  tail -n 20 "$WORK/services.log" >&2
  die "scripts/test-services.sh up failed"
}
# shellcheck disable=SC1091
source "${SLIPWAY_STATE_DIR:-/tmp/slipway-services}/env"
DOCKER=$SLIPWAY_DOCKER_CLI
REG=$SLIPWAY_REGISTRY
"$DOCKER" image inspect local/busybox:1 >/dev/null 2>&1 || die "the engine has no local/busybox:1 (scripts/test-services.sh imports it)"
note "engine $DOCKER_HOST, registry $REG"

# ---------------------------------------------------------------------------------------------
say "Repository"
BARE="$WORK/repos/bench.git"
mkdir -p "$WORK/repos"
export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.test
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.test
if [[ -z $REPO_SRC ]]; then
  git init -q --bare -b main "$BARE"
  python3 scripts/bench-repo.py --seed "$SEED" --commits "$COMMITS" --branch main |
    git -C "$BARE" fast-import --quiet --done
  git -C "$BARE" repack -a -d -q
  BASE=main
  REPO_DESC="generated:seed=$SEED,commits=$COMMITS"
else
  git clone -q --bare "$REPO_SRC" "$BARE" 2>"$WORK/repo-clone.log" || {
    cat "$WORK/repo-clone.log" >&2
    die "cannot clone --repo $REPO_SRC"
  }
  BASE=$(git -C "$BARE" symbolic-ref --short HEAD 2>/dev/null || true)
  if ! git -C "$BARE" rev-parse -q --verify "refs/heads/$BASE" >/dev/null; then
    # HEAD names no branch that exists (a bare repository made with another default name).
    BASE=$(git -C "$BARE" for-each-ref --count=1 --format='%(refname:short)' refs/heads)
    [[ -n $BASE ]] || die "--repo $REPO_SRC has no branch"
    note "HEAD of $REPO_SRC names no branch; using branch $BASE"
  fi
  REPO_DESC="$REPO_SRC@$BASE"
fi
# The benchmark's own commit on top of the repository's tip, on branch slipway-bench: its two
# Dockerfiles, the file the small one copies (and the change rounds change), and a .dockerignore
# without .git (a fresh clone's .git differs byte for byte, which would defeat the build cache of
# COPY . on both sides).
BENCH_INDEX="$WORK/bench.index"
add_file() { # path content -> into $BENCH_INDEX
  local blob
  blob=$(printf '%s' "$2" | git -C "$BARE" hash-object -w --stdin)
  GIT_INDEX_FILE=$BENCH_INDEX git -C "$BARE" update-index --add --cacheinfo "100644,$blob,$1"
}
GIT_INDEX_FILE=$BENCH_INDEX git -C "$BARE" read-tree "refs/heads/$BASE"
add_file .dockerignore $'.git\n'
add_file .bench/small.txt $'the one file of the small workload\n'
add_file .bench/Dockerfile.small $'FROM local/busybox:1\nCOPY .bench/small.txt /small.txt\n'
add_file .bench/Dockerfile.heavy $'FROM local/busybox:1\n# 200 MiB of incompressible data in a layer of its own\nRUN head -c 209715200 /dev/urandom > /data.bin\nCOPY . /src\n'
BENCH_COMMIT=$(GIT_AUTHOR_DATE="1700000000 +0000" GIT_COMMITTER_DATE="1700000000 +0000" \
  git -C "$BARE" commit-tree "$(GIT_INDEX_FILE=$BENCH_INDEX git -C "$BARE" write-tree)" \
  -p "refs/heads/$BASE" -m "slipway benchmark files")
git -C "$BARE" update-ref refs/heads/slipway-bench "$BENCH_COMMIT"
git -C "$BARE" update-ref refs/heads/change-w "$BENCH_COMMIT"
git -C "$BARE" update-ref refs/heads/change-r "$BENCH_COMMIT"
REPO_COMMITS=$(git -C "$BARE" rev-list --count slipway-bench)
REPO_PACK_MIB=$(du -sm "$BARE/objects" | cut -f1)
REPO_TIP_MIB=$(git -C "$BARE" ls-tree -r -l slipway-bench | awk '{s+=$4} END {printf "%.1f", s/1048576}')
note "$REPO_DESC: $REPO_COMMITS commits, $REPO_PACK_MIB MiB of objects, tip tree $REPO_TIP_MIB MiB (branch slipway-bench)"

# Moves branch $1 on by one commit that changes .bench/small.txt only.
change_commit() {
  local branch="$1" text="$2" tree commit
  GIT_INDEX_FILE=$BENCH_INDEX git -C "$BARE" read-tree "refs/heads/$branch"
  add_file .bench/small.txt "$text"$'\n'
  tree=$(GIT_INDEX_FILE=$BENCH_INDEX git -C "$BARE" write-tree)
  commit=$(git -C "$BARE" commit-tree "$tree" -p "refs/heads/$branch" -m "$text")
  git -C "$BARE" update-ref "refs/heads/$branch" "$commit"
}

# A new URL for the same repository: a cache keyed by URL cannot hold it.
fresh_url() {
  ln -s bench.git "$WORK/repos/$1.git"
  printf 'http://127.0.0.1:%s/%s.git' "$GIT_PORT" "$1"
}

# ---------------------------------------------------------------------------------------------
say "Git server over smart HTTP on 127.0.0.1 (scripts/git-http-server.py, token auth)"
BENCH_GIT_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_GIT_TOKEN
GIT_DEMO_TOKEN=$BENCH_GIT_TOKEN python3 scripts/git-http-server.py "$WORK/repos" "$WORK/git.port" \
  </dev/null >"$WORK/git.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [[ -s $WORK/git.port ]] && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$WORK/git.log" >&2; die "the git server did not start"; }
  sleep 0.1
done
[[ -s $WORK/git.port ]] || die "the git server did not write its port within 10 s"
GIT_PORT=$(cat "$WORK/git.port")
URL="http://127.0.0.1:$GIT_PORT/bench.git"
# The raw side's token, as an http.extraHeader in git's environment (not in its arguments).
GIT_AUTH_HEADER="Authorization: Basic $(printf 'x-access-token:%s' "$BENCH_GIT_TOKEN" | base64 -w0)"
note "$URL"

# ---------------------------------------------------------------------------------------------
# Workers

# Writes a worker configuration: $1 file, $2 pipeline kind (full, clone, two, four), $3 workspace root.
write_conf() {
  local file="$1" kind="$2" ws="$3" pipeline
  case "$kind" in
  full) pipeline="[git, buildkit, docker-push]" ;;
  clone) pipeline="[git]" ;;
  two) pipeline="[git, buildkit]" ;;
  four) pipeline="[git, buildkit, ecr, docker-push]" ;;
  esac
  {
    printf 'worker {\n  bind-address = 127.0.0.1\n  port = 0\n  workspace-root = "%s"\n' "$ws"
    printf '  shutdown-grace-period = 5s\n  pipeline = %s\n  stages {\n' "$pipeline"
    printf '    git.allowed-schemes = [http]\n'
    if [[ $kind != clone ]]; then
      printf '    buildkit { docker-host = "%s", docker-cli = "%s", network = none }\n' "$DOCKER_HOST" "$DOCKER"
    fi
    if [[ $kind == full ]]; then
      # The password comes from the worker's environment, not from this file or its arguments.
      printf '    docker-push { docker-host = "%s", registry = "%s",\n' "$DOCKER_HOST" "$REG"
      # shellcheck disable=SC2016 # a HOCON substitution, not a shell one
      printf '      auth { username = "%s", password = ${?REGISTRY_PASSWORD} } }\n' "$SLIPWAY_REGISTRY_USER"
    fi
    if [[ $kind == four ]]; then
      # Dummy values: the stage must not call ECR before a job needs a token; the endpoint is a
      # closed port on loopback in case it does.
      printf '    ecr { region = "us-east-1", endpoint-override = "http://127.0.0.1:9" }\n'
      printf '    docker-push { docker-host = "%s" }\n' "$DOCKER_HOST"
    fi
    printf '  }\n}\n'
    [[ -z $WORKER_CONF_EXTRA ]] || printf 'include required(file("%s"))\n' "$WORKER_CONF_EXTRA"
  } >"$file"
}

# Runs a worker in the foreground of a subshell: $1 config, $2 log. Its environment (exported
# here, not passed as arguments) holds the registry password for docker-push's static auth, and
# dummy AWS credentials for ecr, with the SDK kept off the instance metadata endpoint and ~/.aws.
exec_worker() {
  cd "$WORK"
  export REGISTRY_PASSWORD="$SLIPWAY_REGISTRY_PASSWORD" AWS_ACCESS_KEY_ID=AKIAIOSFODNN7BENCH00
  export AWS_SECRET_ACCESS_KEY=bench-dummy-secret-not-a-credential AWS_EC2_METADATA_DISABLED=true
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  exec "$IMAGE_DIR/bin/worker" serve --config "$1" 2>"$2"
}

# Starts a worker: $1 name, $2 pipeline kind. Sets WORKER_PID and WORKER_PORT.
start_worker() {
  local name="$1" kind="$2" port=""
  write_conf "$WORK/$name.conf" "$kind" "$WORK/ws-$name"
  (exec_worker "$WORK/$name.conf" "$WORK/$name.log") &
  WORKER_PID=$!
  pids+=("$WORKER_PID")
  for _ in $(seq 600); do
    kill -0 "$WORKER_PID" 2>/dev/null || break
    port=$(grep -oE 'listening on 127.0.0.1:[0-9]+ ' "$WORK/$name.log" 2>/dev/null | grep -oE '[0-9]+ $' | tr -d ' ' || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { tail -n 30 "$WORK/$name.log" >&2; die "the $name worker did not start (log above)"; }
  WORKER_PORT=$port
}

# One RunJob on the worker at port $1: $2 request file, $3 output prefix. Sets JOB_SECONDS and
# JOB_DETAIL ("stage.git=... duration_ms=..."); dies with the worker's message if the job failed.
run_job() {
  local port="$1" req="$2" out="$3" status
  JOB_SECONDS=$(curl -sS --http2-prior-knowledge -X POST -m 3600 \
    -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @"$req" \
    -D "$out.headers" -o "$out.body" -w '%{time_total}' \
    "http://127.0.0.1:$port/slipway.worker.v1.JobService/RunJob") ||
    die "RunJob to 127.0.0.1:$port failed (curl); see $out.headers"
  status=$(tr -d '\r' <"$out.headers" | awk -F': ' 'tolower($1)=="grpc-status" {s=$2} END {print s}')
  if [[ $status != 0 ]]; then
    die "RunJob answered grpc-status ${status:-none}: $(tr -d '\r' <"$out.headers" | awk -F': ' 'tolower($1)=="grpc-message" {print $2}')"
  fi
  python3 scripts/bench-grpc.py response "$out.body" >"$out.result" || die "no JobResponse in $out.body"
  if ! grep -qx 'success=true' "$out.result"; then
    cat "$out.result" >&2
    die "the worker's job failed (above)"
  fi
  JOB_DETAIL=$(grep -E '^(stage\.|duration_ms=)' "$out.result" | tr '\n' ' ')
}

# CPU ticks (user + system, clock ticks) of the processes this script started, children that
# have ended included.
cpu_ticks() {
  local t=0 p s
  for p in "${pids[@]+"${pids[@]}"}"; do
    s=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + s))
  done
  printf '%s' "$t"
}

# Waits until the workers are idle: their CPU time unchanged over 300 ms, at most 60 s. A worker
# may go on working after it has answered (a ready checkout for the next job, deleting the last
# workspace); that work must neither overlap the other side's clock nor go unreported. Sets
# SETTLE_SECONDS: how long the worker kept working after its answer (to the nearest 0.3 s).
settle() {
  local t0 before after
  t0=$EPOCHREALTIME
  before=$(cpu_ticks)
  for _ in $(seq 200); do
    sleep 0.3
    after=$(cpu_ticks)
    [[ $after == "$before" ]] && break
    before=$after
  done
  SETTLE_SECONDS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a - 0.3}')
}

# A worker job: $1 port, $2 repo URL, $3 branch, $4 dockerfile ('' for a clone), $5 image name.
JOBN=0
worker_job() {
  local port="$1" url="$2" branch="$3" dockerfile="$4" image="$5"
  JOBN=$((JOBN + 1))
  python3 scripts/bench-grpc.py request --repo "$url" --branch "$branch" --image "$image" \
    ${dockerfile:+--dockerfile "$dockerfile"} --token-env BENCH_GIT_TOKEN >"$WORK/job-$JOBN.req"
  run_job "$port" "$WORK/job-$JOBN.req" "$WORK/job-$JOBN"
  [[ -z $dockerfile ]] || printf '%s\n' "$image" >>"$WORK/pushed"
  settle
  JOB_DETAIL+="after_answer_ms=$(awk -v s="$SETTLE_SECONDS" 'BEGIN {printf "%d", s * 1000}') "
}

# The raw tools, timed: $1 repo URL, $2 branch, $3 dockerfile ('' to clone only), $4 image
# reference (registry/repository:tag). Sets RAW_SECONDS. Clean-up after the clock.
raw_job() {
  local url="$1" branch="$2" dockerfile="$3" ref="$4" dir cfg t0 t1
  JOBN=$((JOBN + 1))
  dir="$WORK/raw-$JOBN"
  cfg="$WORK/raw-$JOBN.docker"
  mkdir "$cfg"
  t0=$EPOCHREALTIME
  GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="$GIT_AUTH_HEADER" \
    git clone -q --depth 1 --branch "$branch" "$url" "$dir" 2>>"$WORK/raw.log" ||
    die "git clone failed; see $WORK/raw.log"
  if [[ -n $dockerfile ]]; then
    DOCKER_BUILDKIT=1 DOCKER_CONFIG=$cfg "$DOCKER" build --network none -f "$dir/$dockerfile" -t "$ref" "$dir" \
      >>"$WORK/raw.log" 2>&1 || die "docker build failed; see $WORK/raw.log"
    printf '%s' "$SLIPWAY_REGISTRY_PASSWORD" |
      DOCKER_CONFIG=$cfg "$DOCKER" login -u "$SLIPWAY_REGISTRY_USER" --password-stdin "$REG" \
        >>"$WORK/raw.log" 2>&1 || die "docker login failed; see $WORK/raw.log"
    DOCKER_CONFIG=$cfg "$DOCKER" push "$ref" >>"$WORK/raw.log" 2>&1 || die "docker push failed; see $WORK/raw.log"
  fi
  t1=$EPOCHREALTIME
  RAW_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')
  rm -rf "$dir" "$cfg"
  if [[ -n $dockerfile ]]; then
    printf '%s\n' "${ref#"$REG"/}" >>"$WORK/pushed"
    "$DOCKER" rmi "$ref" >/dev/null 2>&1 || true
  fi
}

prune_build_cache() {
  "$DOCKER" builder prune -af >/dev/null 2>&1 || die "docker builder prune failed"
}

# Records one round of figure $1: worker seconds, raw seconds, worker detail.
record() {
  local fig="$1" round="$2"
  printf '%s\n' "$JOB_SECONDS" >>"$WORK/fig/$fig.w"
  printf '%s\n' "$RAW_SECONDS" >>"$WORK/fig/$fig.r"
  printf '%s\n' "$JOB_DETAIL" >>"$WORK/fig/$fig.detail"
  grep -qx "$fig" "$WORK/fig/order" 2>/dev/null || printf '%s\n' "$fig" >>"$WORK/fig/order"
  printf '   %-14s round %d/%d   worker %8.3f s   raw %8.3f s   (%s)\n' \
    "$fig" "$round" "$ROUNDS" "$JOB_SECONDS" "$RAW_SECONDS" "$JOB_DETAIL"
}
mkdir -p "$WORK/fig"
: >"$WORK/fig/order"

WORKLOADS=(small heavy)
dockerfile_of() { printf '.bench/Dockerfile.%s' "$1"; }

if wants clone || wants cold || wants repeat || wants ping; then
  say "Workers from $IMAGE_DIR: [git, buildkit, docker-push] and [git], and $WARMUP warm-up jobs each"
  start_worker full full
  FULL_PORT=$WORKER_PORT
  FULL_PID=$WORKER_PID
  start_worker clone clone
  CLONE_PORT=$WORKER_PORT
  CLONE_PID=$WORKER_PID
  note "full worker 127.0.0.1:$FULL_PORT, clone worker 127.0.0.1:$CLONE_PORT"
  # A worker that runs for days has its classes loaded and compiled; so do the raw tools' binaries
  # sit in the page cache. Untimed jobs of each kind, on URLs and images no figure uses: a few for
  # the worker, whose clone and checkout code the JIT compiles only after it has run a little (a
  # checkout of this tree takes about 1 s in a new JVM, about 0.3 s compiled), one for the raw side.
  for i in $(seq "$WARMUP"); do
    worker_job "$FULL_PORT" "$(fresh_url "warm-w-$i")" slipway-bench "$(dockerfile_of small)" "bench/$RUNID-warm-w:$i"
    worker_job "$CLONE_PORT" "$(fresh_url "warm-c-$i")" slipway-bench "" "bench/$RUNID-clone:1"
  done
  raw_job "$(fresh_url warm-r)" slipway-bench "$(dockerfile_of small)" "$REG/bench/$RUNID-warm-r:1"
fi

# ---------------------------------------------------------------------------------------------
if wants clone; then
  say "Clone alone: the git stage ([git] worker, RunJob) vs git clone --depth 1"
  for i in $(seq "$ROUNDS"); do
    worker_job "$CLONE_PORT" "$(fresh_url "cold-cw-$i")" slipway-bench "" "bench/$RUNID-clone:1"
    raw_job "$(fresh_url "cold-cr-$i")" slipway-bench "" ""
    record clone-cold "$i"
  done
  worker_job "$CLONE_PORT" "$URL" slipway-bench "" "bench/$RUNID-clone:1" # fills its cache, if any
  for i in $(seq "$ROUNDS"); do
    worker_job "$CLONE_PORT" "$URL" slipway-bench "" "bench/$RUNID-clone:1"
    raw_job "$URL" slipway-bench "" ""
    record clone-cached "$i"
  done
fi

if wants cold; then
  for w in "${WORKLOADS[@]}"; do
    say "Cold job, $w: fresh workspace and URL, new image repository, empty build cache"
    for i in $(seq "$ROUNDS"); do
      prune_build_cache
      worker_job "$FULL_PORT" "$(fresh_url "cold-w-$w-$i")" slipway-bench "$(dockerfile_of "$w")" \
        "bench/$RUNID-w-$w-cold-$i:1"
      prune_build_cache
      raw_job "$(fresh_url "cold-r-$w-$i")" slipway-bench "$(dockerfile_of "$w")" "$REG/bench/$RUNID-r-$w-cold-$i:1"
      record "cold-$w" "$i"
    done
  done
fi

if wants repeat; then
  for w in "${WORKLOADS[@]}"; do
    say "Repeat job, $w: the same commit again, then a commit that changes one file"
    # Untimed: each side builds and pushes the commit once, so that its caches hold it.
    worker_job "$FULL_PORT" "$URL" slipway-bench "$(dockerfile_of "$w")" "bench/$RUNID-w-$w:repeat"
    raw_job "$URL" slipway-bench "$(dockerfile_of "$w")" "$REG/bench/$RUNID-r-$w:repeat"
    for i in $(seq "$ROUNDS"); do
      worker_job "$FULL_PORT" "$URL" slipway-bench "$(dockerfile_of "$w")" "bench/$RUNID-w-$w:repeat"
      raw_job "$URL" slipway-bench "$(dockerfile_of "$w")" "$REG/bench/$RUNID-r-$w:repeat"
      record "repeat-$w" "$i"
    done
    for i in $(seq "$ROUNDS"); do
      change_commit change-w "worker, $w, round $i, run $RUNID"
      worker_job "$FULL_PORT" "$URL" change-w "$(dockerfile_of "$w")" "bench/$RUNID-w-$w:change"
      change_commit change-r "raw, $w, round $i, run $RUNID"
      raw_job "$URL" change-r "$(dockerfile_of "$w")" "$REG/bench/$RUNID-r-$w:change"
      record "change-$w" "$i"
    done
  done
fi

# ---------------------------------------------------------------------------------------------
# Ping p50/p99 during a heavy, cold build on the full worker.
PING_TIMES="$WORK/fig/ping.times"
if wants ping; then
  say "Ping while a build runs (heavy workload, empty build cache)"
  printf '\0\0\0\0\0' >"$WORK/ping.req" # an empty PingRequest in gRPC framing
  PING_URL="http://127.0.0.1:$FULL_PORT/slipway.worker.v1.JobService/Ping"
  busy() { [[ "$(od -An -tx1 "$1" 2>/dev/null | tr -d ' \n')" == *1002* ]]; } # status = 2 (BUSY)
  : >"$PING_TIMES"
  build=0
  while (($(wc -l <"$PING_TIMES") < PINGS && build < 3)); do
    build=$((build + 1))
    prune_build_cache
    python3 scripts/bench-grpc.py request --repo "$(fresh_url "ping-$build")" --branch slipway-bench \
      --dockerfile "$(dockerfile_of heavy)" --image "bench/$RUNID-ping-$build:1" --token-env BENCH_GIT_TOKEN \
      >"$WORK/ping-job-$build.req"
    printf 'bench/%s-ping-%s:1\n' "$RUNID" "$build" >>"$WORK/pushed"
    curl -s --http2-prior-knowledge -X POST -m 3600 -H 'content-type: application/grpc' -H 'te: trailers' \
      --data-binary @"$WORK/ping-job-$build.req" -o "$WORK/ping-job-$build.body" \
      "http://127.0.0.1:$FULL_PORT/slipway.worker.v1.JobService/RunJob" &
    job_pid=$!
    pids+=("$job_pid")
    for _ in $(seq 200); do
      curl -s --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary @"$WORK/ping.req" -o "$WORK/ping.one" "$PING_URL" || true
      busy "$WORK/ping.one" && break
      sleep 0.05
    done
    busy "$WORK/ping.one" || die "the worker never said BUSY after the job was sent"
    # One HTTP/2 connection, a call every 20 ms, for the whole build (clone, build, push); only
    # the answers that say BUSY count.
    python3 scripts/bench-grpc.py ping --port "$FULL_PORT" --count 1000000 --interval 0.02 --while-pid "$job_pid" >"$WORK/ping-$build.out" || die "the Ping client failed"
    awk '$2 == 2 {print $1}' "$WORK/ping-$build.out" >>"$PING_TIMES"
    wait "$job_pid" || die "the build during the pings failed (curl)"
    untrack "$job_pid"
    python3 scripts/bench-grpc.py response "$WORK/ping-job-$build.body" >"$WORK/ping-job-$build.result" ||
      die "no JobResponse for the build during the pings"
    grep -qx 'success=true' "$WORK/ping-job-$build.result" ||
      die "the build during the pings failed: $(grep '^message=' "$WORK/ping-job-$build.result")"
  done
  note "$(wc -l <"$PING_TIMES") Ping calls answered BUSY during $build build(s)"
fi

# ---------------------------------------------------------------------------------------------
# Start-up and idle memory, as scripts/bench-startup.sh measures them: from launch to the first
# SERVING answer of grpc.health.v1.Health/Check (curl over HTTP/2, a fresh connection per try,
# every 5 ms), then VmRSS after 5 s idle.
if wants startup; then
  say "Launch to SERVING and idle RSS, [git, buildkit] and [git, buildkit, ecr, docker-push]"
  # The job workers are done: stop them, so that they take no memory or CPU from the launches.
  if [[ -n ${FULL_PID:-} ]]; then
    stop_pid "$FULL_PID" && untrack "$FULL_PID"
    stop_pid "$CLONE_PID" && untrack "$CLONE_PID"
  fi
  printf '\0\0\0\0\0' >"$WORK/health.req"
  write_conf "$WORK/two.conf" two "$WORK/ws-two"
  write_conf "$WORK/four.conf" four "$WORK/ws-four"
  for i in $(seq "$ROUNDS"); do
    for kind in two four; do
      start=$EPOCHREALTIME
      (exec_worker "$WORK/$kind.conf" "$WORK/$kind.log") &
      pid=$!
      pids+=("$pid")
      port=""
      ready=""
      deadline=$((SECONDS + 60))
      while [[ -z $ready ]]; do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$WORK/$kind.log" >&2; die "the $kind-stage worker exited during start-up"; }
        ((SECONDS < deadline)) || die "the $kind-stage worker was not SERVING within 60 s; see $WORK/$kind.log"
        [[ -n $port ]] || port=$(grep -oE 'listening on 127.0.0.1:[0-9]+ ' "$WORK/$kind.log" 2>/dev/null | grep -oE '[0-9]+ $' | tr -d ' ' || true)
        if [[ -n $port ]] && curl -s --http2-prior-knowledge -X POST -H 'content-type: application/grpc' \
          -H 'te: trailers' --data-binary @"$WORK/health.req" -o "$WORK/health.out" \
          "http://127.0.0.1:$port/grpc.health.v1.Health/Check" 2>/dev/null &&
          [[ "$(od -An -tx1 "$WORK/health.out" | tr -d ' \n')" == *0801 ]]; then
          ready=$EPOCHREALTIME
        else
          sleep 0.005
        fi
      done
      sleep 5
      rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
      stop_pid "$pid"
      untrack "$pid"
      ms=$(awk -v a="$start" -v b="$ready" 'BEGIN {printf "%d", (b - a) * 1000}')
      stage=$([[ $kind == two ]] && echo 2 || echo 4)
      echo "$ms" >>"$WORK/fig/startup-${stage}stage"
      echo $((rss_kb / 1024)) >>"$WORK/fig/rss-${stage}stage"
      printf '   %d stages, run %d/%d: SERVING after %d ms, idle RSS %d MiB\n' "$stage" "$i" "$ROUNDS" "$ms" $((rss_kb / 1024))
    done
  done
fi

# ---------------------------------------------------------------------------------------------
# Median, min and max of a file of numbers: "median min max" with format $2.
stats() {
  sort -g "$1" | awk -v f="$2" '{a[NR] = $1} END {
    if (NR == 0) exit 1
    m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf f " " f " " f "\n", m, a[1], a[NR] }'
}
# Nearest-rank percentiles p50, p99 and the max.
percentiles() {
  sort -g "$1" | awk '{a[NR] = $1} END {
    if (NR == 0) exit 1
    p50 = int(NR * 0.50); if (p50 < NR * 0.50) p50++
    p99 = int(NR * 0.99); if (p99 < NR * 0.99) p99++
    printf "%.2f %.2f %.2f\n", a[p50], a[p99], a[NR] }'
}

say "Results (indicative on a shared or loaded machine)"
SUMMARY="$WORK/summary"
{
  echo "--- summary ---"
  echo "meta date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "meta command=scripts/bench.sh${ARGS:+ $ARGS}"
  echo "meta host=$(hostname) cpus=$(nproc) mem_gib=$(awk '/MemTotal/ {printf "%d", $2/1048576}' /proc/meminfo) kernel=$(uname -r)"
  echo "meta cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo | tr -s ' ' | tr ' ' '_')"
  echo "meta load_at_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
  echo "meta slipway=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) image=$IMAGE_DIR"
  echo "meta java=$(sed -n 's/^JAVA_VERSION="\(.*\)"/\1/p' "$IMAGE_DIR/release" 2>/dev/null || echo unknown) docker=$("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null) git=$(git --version | awk '{print $3}') curl=$(curl --version | awk 'NR==1 {print $2}')"
  echo "meta repo=$REPO_DESC commits=$REPO_COMMITS objects_mib=$REPO_PACK_MIB tip_mib=$REPO_TIP_MIB"
  echo "meta rounds=$ROUNDS warmup=$WARMUP pings=$PINGS worker_conf=${WORKER_CONF_EXTRA:-none}"
  while read -r fig; do
    read -r wm wmin wmax < <(stats "$WORK/fig/$fig.w" %.3f)
    read -r rm rmin rmax < <(stats "$WORK/fig/$fig.r" %.3f)
    paste "$WORK/fig/$fig.w" "$WORK/fig/$fig.r" | awk '{printf "%.6f\n", $1 / $2}' >"$WORK/fig/$fig.ratio"
    read -r pm pmin pmax < <(stats "$WORK/fig/$fig.ratio" %.3f)
    ratio=$(awk -v a="$wm" -v b="$rm" 'BEGIN {printf "%.3f", a / b}')
    stages=""
    for s in $(tr ' ' '\n' <"$WORK/fig/$fig.detail" | sed -n 's/^stage\.\([^=]*\)=.*/\1/p' | awk '!seen[$0]++'); do
      tr ' ' '\n' <"$WORK/fig/$fig.detail" | sed -n "s/^stage\.$s=//p" | awk '{printf "%.6f\n", $1 / 1000}' >"$WORK/fig/$fig.stage"
      stages+=" worker.stage.$s.median=$(stats "$WORK/fig/$fig.stage" %.3f | cut -d' ' -f1)"
    done
    tr ' ' '\n' <"$WORK/fig/$fig.detail" | sed -n 's/^duration_ms=//p' | awk '{printf "%.6f\n", $1 / 1000}' >"$WORK/fig/$fig.inner"
    inner=$(stats "$WORK/fig/$fig.inner" %.3f | cut -d' ' -f1)
    # The job's time outside its stages: admission, workspace, clean-up.
    awk '{s = 0; d = 0; for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "duration_ms") d = kv[2]; else if (kv[1] ~ /^stage\./) s += kv[2] }
      printf "%.6f\n", (d - s) / 1000 }' "$WORK/fig/$fig.detail" >"$WORK/fig/$fig.outside"
    stages+=" worker.outside_stages.median=$(stats "$WORK/fig/$fig.outside" %.3f | cut -d' ' -f1)"
    # Work the worker did after answering (see settle), off both clocks.
    tr ' ' '\n' <"$WORK/fig/$fig.detail" | sed -n 's/^after_answer_ms=//p' | awk '{printf "%.6f\n", $1 / 1000}' >"$WORK/fig/$fig.after"
    stages+=" worker.after_answer.median=$(stats "$WORK/fig/$fig.after" %.3f | cut -d' ' -f1)"
    echo "figure $fig unit=s rounds=$(wc -l <"$WORK/fig/$fig.w") worker.median=$wm worker.min=$wmin worker.max=$wmax raw.median=$rm raw.min=$rmin raw.max=$rmax ratio=$ratio pair_ratio.median=$pm pair_ratio.min=$pmin pair_ratio.max=$pmax worker.job_duration.median=$inner$stages"
  done <"$WORK/fig/order"
  for fig in startup-2stage startup-4stage rss-2stage rss-4stage; do
    [[ -s $WORK/fig/$fig ]] || continue
    read -r m mn mx < <(stats "$WORK/fig/$fig" %d)
    unit=$([[ $fig == startup-* ]] && echo ms || echo MiB)
    echo "figure $fig unit=$unit runs=$(wc -l <"$WORK/fig/$fig") median=$m min=$mn max=$mx"
  done
  if [[ -s $PING_TIMES ]]; then
    read -r p50 p99 pmax < <(percentiles "$PING_TIMES")
    echo "figure ping-build unit=ms n=$(wc -l <"$PING_TIMES") p50=$p50 p99=$p99 max=$pmax"
  fi
} >"$SUMMARY"
# The targets of issue 12 against this run's figures: figure, key, limit, goal (or -).
awk '
  BEGIN {
    n = split("repeat-small ratio 0.8 0.5|repeat-heavy ratio 0.8 0.5|change-small ratio 1.0 -|" \
      "change-heavy ratio 1.0 -|cold-small ratio 1.2 -|cold-heavy ratio 1.05 -|clone-cold ratio 1.2 -|" \
      "clone-cached ratio 0.333 -|startup-4stage median 1000 600|rss-4stage median 120 -|" \
      "ping-build p99 10 -", rows, "|")
  }
  $1 == "figure" { for (i = 3; i <= NF; i++) { split($i, kv, "="); value[$2 "/" kv[1]] = kv[2] } }
  END {
    for (r = 1; r <= n; r++) {
      split(rows[r], t, " ")
      if (!((t[1] "/" t[2]) in value)) continue
      v = value[t[1] "/" t[2]]
      printf "target %s %s=%s limit=%s%s met=%s", t[1], t[2], v, t[3], t[4] == "-" ? "" : " goal=" t[4],
        v + 0 <= t[3] + 0 ? "yes" : "no"
      if (v + 0 > t[3] + 0) printf " off=+%.0f%%", (v / t[3] - 1) * 100
      printf "\n"
    }
  }' "$SUMMARY" >"$SUMMARY.targets"
cat "$SUMMARY.targets" >>"$SUMMARY"
{
  echo "meta runtime_s=$(awk -v a="$STARTED" -v b="$EPOCHREALTIME" 'BEGIN {printf "%d", b - a}')"
  echo "--- end ---"
} >>"$SUMMARY"

# The table, from the summary.
awk '
  function v(k,   i, kv) { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
  $1 == "figure" && v("ratio") != "" {
    if (!head++) printf "   %-14s %-28s %-28s %s\n", "figure", "worker median (min-max) s", "raw median (min-max) s", "ratio"
    printf "   %-14s %-28s %-28s %s\n", $2, v("worker.median") " (" v("worker.min") "-" v("worker.max") ")",
      v("raw.median") " (" v("raw.min") "-" v("raw.max") ")", v("ratio") }
  $1 == "figure" && v("median") != "" {
    printf "   %-14s %s %s (%s-%s)\n", $2, v("median"), v("unit"), v("min"), v("max") }
  $1 == "figure" && v("p50") != "" {
    printf "   %-14s p50 %s ms, p99 %s ms, max %s ms (%s calls)\n", $2, v("p50"), v("p99"), v("max"), v("n") }
  $1 == "target" {
    if (!thead++) printf "\n   targets of issue 12 (this run):\n"
    split($3, kv, "=")
    printf "   %-14s %-7s %-9s limit %-6s %s\n", $2, kv[1], kv[2], v("limit"),
      v("met") == "yes" ? "met" : "missed by " substr(v("off"), 2) }
' "$SUMMARY"
echo
cat "$SUMMARY"
if [[ -n $SUMMARY_FILE ]]; then
  cp "$SUMMARY" "$SUMMARY_FILE" || die "cannot write --summary $SUMMARY_FILE"
  chmod 644 "$SUMMARY_FILE"
fi

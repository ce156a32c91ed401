#!/usr/bin/env bash
# Installs and starts what Slipway's Docker-using tests need, on a fresh Debian 12 machine, as root,
# with no internet but Debian's package mirror.
#
#   scripts/test-services.sh up       install what is missing, start the services, wait until they answer
#   scripts/test-services.sh down     stop what `up` started and wait until it is gone
#   scripts/test-services.sh status   say what runs; exit 0 only when everything answers
#
# `up` is idempotent: a second call reuses the running services. Everything lives under one state
# directory, $SLIPWAY_STATE_DIR (default /tmp/slipway-services), so nothing collides with an engine
# or leftovers elsewhere on the machine. When `up` succeeds, $SLIPWAY_STATE_DIR/env holds the
# variables the tests read:
#
#   export DOCKER_HOST=unix://<state>/docker/docker.sock
#   export SLIPWAY_DOCKER_CLI=/usr/bin/docker
#   export SLIPWAY_REGISTRY=127.0.0.1:<port>
#   export SLIPWAY_REGISTRY_USER=slipway
#   export SLIPWAY_REGISTRY_PASSWORD=<generated>
#   export SLIPWAY_REGISTRY_AWS_PASSWORD=<generated>
#
# The env file holds passwords: it is written with mode 600, like the password files themselves.
#
# Services:
#   docker   Debian's docker.io (20.10) with its embedded BuildKit. No bridge network, no iptables:
#            builds use --network=host or --network=none, and nothing may reach private-range
#            addresses. It listens on a unix socket only. Base image local/busybox:1 (busybox-static)
#            is imported, since no image can be pulled.
#   registry Debian's docker-registry (the CNCF distribution registry 2.8) on 127.0.0.1:$SLIPWAY_REGISTRY_PORT
#            (default 5000), plain HTTP, storage under <state>/registry/data, htpasswd (bcrypt) basic
#            auth with two users: `slipway` (SLIPWAY_REGISTRY_USER/PASSWORD) and `AWS`
#            (SLIPWAY_REGISTRY_AWS_PASSWORD; the user name ECR tokens carry, for an ECR stand-in).
#            The passwords are generated at the first `up`, kept in <state>/registry/*.password
#            (mode 600) and reused afterwards, also across `down`. dockerd treats 127.0.0.0/8
#            registries as insecure, so the engine pushes to it over plain HTTP with no extra flags.
#
# Everything that listens binds a unix socket or 127.0.0.1. Each service is an
# <name>_up / <name>_down / <name>_status trio with a line in the main dispatch below.
#
# Use /usr/bin/docker (docker.io's 20.10 client), never whatever `docker` comes first on PATH: the
# 28.x client in /usr/local/bin refuses DOCKER_BUILDKIT=1 without the buildx plugin.
set -euo pipefail

readonly STATE_DIR="${SLIPWAY_STATE_DIR:-/tmp/slipway-services}"
readonly ENV_FILE="$STATE_DIR/env"
readonly DOCKER_CLI=/usr/bin/docker
readonly DOCKERD=/usr/sbin/dockerd
readonly DOCKER_DIR="$STATE_DIR/docker"
readonly DOCKER_SOCKET="$DOCKER_DIR/docker.sock"
readonly DOCKER_HOST_URL="unix://$DOCKER_SOCKET"
readonly DOCKER_PIDFILE="$DOCKER_DIR/dockerd.pid"
readonly DOCKER_LOG="$DOCKER_DIR/dockerd.log"
readonly DOCKER_START_TIMEOUT="${SLIPWAY_DOCKER_START_TIMEOUT:-60}"
readonly DOCKER_STOP_TIMEOUT="${SLIPWAY_DOCKER_STOP_TIMEOUT:-30}"
readonly BASE_IMAGE=local/busybox:1
# Applets linked into the base image besides sh; busybox provides them all.
readonly BASE_APPLETS=(sleep echo cat ls env printf test true false mkdir rm cp mv grep sed wc head tail id pwd touch date)
readonly PACKAGES=(docker.io busybox-static git)
readonly REGISTRY_BIN=/usr/bin/docker-registry
readonly REGISTRY_DIR="$STATE_DIR/registry"
readonly REGISTRY_PORT="${SLIPWAY_REGISTRY_PORT:-5000}"
readonly REGISTRY_ADDR="127.0.0.1:$REGISTRY_PORT"
readonly REGISTRY_CONFIG="$REGISTRY_DIR/config.yml"
readonly REGISTRY_HTPASSWD="$REGISTRY_DIR/htpasswd"
readonly REGISTRY_PIDFILE="$REGISTRY_DIR/registry.pid"
readonly REGISTRY_LOG="$REGISTRY_DIR/registry.log"
readonly REGISTRY_USER=slipway
readonly REGISTRY_PASSWORD_FILE="$REGISTRY_DIR/slipway.password"
readonly REGISTRY_AWS_PASSWORD_FILE="$REGISTRY_DIR/aws.password"
readonly REGISTRY_START_TIMEOUT="${SLIPWAY_REGISTRY_START_TIMEOUT:-30}"
readonly REGISTRY_STOP_TIMEOUT="${SLIPWAY_REGISTRY_STOP_TIMEOUT:-10}"
# docker-registry serves; apache2-utils brings htpasswd (bcrypt with -B); curl probes /v2/.
readonly REGISTRY_PACKAGES=(docker-registry apache2-utils curl)

log() { printf 'test-services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Packages

package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    package_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  [[ $(id -u) -eq 0 ]] || die "packages ${missing[*]} are missing and only root can install them"
  log "installing ${missing[*]}"
  # Keep the packages' own init scripts from starting a system dockerd (with a docker0 bridge on
  # 172.17.0.0/16) during installation: this script starts its own engine below.
  local own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    own_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$own_policy"
    chmod 755 "$own_policy"
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >"$STATE_DIR/apt.log" 2>&1 || rc=$?
  [[ -n $own_policy ]] && rm -f "$own_policy"
  if ((rc != 0)); then
    tail -n 30 "$STATE_DIR/apt.log" >&2
    die "apt-get failed (exit $rc); full log in $STATE_DIR/apt.log"
  fi
}

# ---------------------------------------------------------------------------------------------
# Processes

# True when pid $1 exists and is not a zombie (a zombie holds a pid but runs nothing; PID 1 on
# some machines never reaps them).
pid_running() {
  local pid="$1" state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# True when pid $1 runs the program $2 (/proc/PID/comm). A pid file left by a killed process may
# name a pid the kernel has since given to another program: that one must be neither trusted nor
# stopped.
pid_is() {
  local pid="$1" name="$2"
  pid_running "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]
}

# Waits until the command $4 succeeds, for program $1 (pid $2, log file $3), at most $5 seconds;
# $6 says what it should do, and the optional command $7 what it did last, for the error.
wait_answers() {
  local name="$1" pid="$2" logfile="$3" probe="$4" timeout="$5" what="$6" last="${7:-}"
  local deadline=$((SECONDS + timeout))
  until "$probe"; do
    if ! pid_running "$pid"; then
      tail -n 30 "$logfile" >&2 || true
      die "$name (pid $pid) exited during start-up; full log in $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$logfile" >&2 || true
      die "$name (pid $pid) did not $what within ${timeout}s${last:+ ($("$last"))}; full log in $logfile"
    fi
    sleep 0.2
  done
}

# Stops pid $2, running program $1: SIGTERM, then SIGKILL once $3 seconds have passed.
stop_process() {
  local name="$1" pid="$2" timeout="$3"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$timeout"; then
    log "$name (pid $pid) still runs after ${timeout}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "$name (pid $pid) survived SIGKILL"
  fi
}

pid_from_file() {
  if [[ -r $1 ]]; then
    tr -dc '0-9' <"$1"
  fi
}

# Waits up to $2 seconds for pid $1 to stop running.
wait_gone() {
  local pid="$1" deadline=$((SECONDS + $2))
  while pid_running "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------
# Docker engine

docker_cli() {
  "$DOCKER_CLI" -H "$DOCKER_HOST_URL" "$@"
}

docker_answers() {
  [[ -S $DOCKER_SOCKET ]] && docker_cli info >/dev/null 2>&1
}

docker_wait_ready() {
  wait_answers dockerd "$1" "$DOCKER_LOG" docker_answers "$DOCKER_START_TIMEOUT" \
    "answer on $DOCKER_HOST_URL"
}

# Stops the containerd of our engine's exec root, if it still runs: one whose dockerd was killed.
stop_leftover_containerd() {
  local cpid
  cpid=$(pid_from_file "$DOCKER_DIR/exec/containerd/containerd.pid")
  if pid_is "$cpid" containerd; then
    kill -TERM "$cpid" 2>/dev/null || true
    wait_gone "$cpid" 10 || kill -KILL "$cpid" 2>/dev/null || true
  fi
}

docker_start() {
  mkdir -p "$DOCKER_DIR"
  chmod 700 "$DOCKER_DIR"
  # A socket path longer than 107 bytes cannot be bound.
  ((${#DOCKER_SOCKET} < 108)) || die "socket path $DOCKER_SOCKET is too long; choose a shorter SLIPWAY_STATE_DIR"
  rm -f "$DOCKER_PIDFILE" "$DOCKER_SOCKET"
  # An engine that was killed (as at the end of a session) leaves its containerd's pid file and
  # sockets behind; a new dockerd then waits for a containerd that is gone, or whose pid now
  # belongs to another program, and gives up ("timeout waiting for containerd to start"). The
  # exec root holds only such run-time state: stop what is really ours and start afresh.
  stop_leftover_containerd
  rm -rf "$DOCKER_DIR/exec"
  # Our own daemon.json, so that a system /etc/docker/daemon.json can change nothing here.
  printf '{}\n' >"$DOCKER_DIR/daemon.json"
  log "starting dockerd on $DOCKER_HOST_URL (log: $DOCKER_LOG)"
  # setsid: the engine must outlive this script and its caller's process group.
  # The proxy variables point every registry the engine might try on its own (docker.io, for an
  # image that is not local) at a closed port on loopback: such a pull fails here, at once, and
  # sends nothing off this machine, not even a DNS query. Loopback registries are reached directly.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
    NO_PROXY=127.0.0.0/8,localhost,::1 \
  setsid "$DOCKERD" \
    --config-file "$DOCKER_DIR/daemon.json" \
    --host "$DOCKER_HOST_URL" \
    --pidfile "$DOCKER_PIDFILE" \
    --exec-root "$DOCKER_DIR/exec" \
    --data-root "$DOCKER_DIR/data" \
    --bridge=none \
    --iptables=false \
    --ip-masq=false \
    </dev/null >"$DOCKER_LOG" 2>&1 &
  local pid=$!
  disown "$pid" 2>/dev/null || true
  docker_wait_ready "$pid"
  log "dockerd (pid $pid) answers on $DOCKER_HOST_URL"
}

docker_import_base_image() {
  if docker_cli image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  local busybox rootfs applet
  busybox=$(command -v busybox || true)
  [[ -x /bin/busybox ]] && busybox=/bin/busybox
  [[ -n $busybox ]] || die "busybox not found; is busybox-static installed?"
  rootfs=$(mktemp -d "$STATE_DIR/rootfs.XXXXXX")
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
  cp "$busybox" "$rootfs/bin/busybox"
  ln -s busybox "$rootfs/bin/sh"
  for applet in "${BASE_APPLETS[@]}"; do
    ln -s busybox "$rootfs/bin/$applet"
  done
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  log "importing $BASE_IMAGE from $busybox"
  tar -C "$rootfs" -c . |
    docker_cli import \
      --change 'ENV PATH=/bin' \
      --change 'CMD ["/bin/sh"]' \
      - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

docker_up() {
  local pid
  pid=$(pid_from_file "$DOCKER_PIDFILE")
  if pid_is "$pid" dockerd; then
    if ! docker_answers; then
      log "dockerd (pid $pid) runs but does not answer yet; waiting"
      docker_wait_ready "$pid"
    fi
    log "reusing dockerd (pid $pid) on $DOCKER_HOST_URL"
  else
    docker_start
  fi
  docker_import_base_image
}

docker_down() {
  local pid
  pid=$(pid_from_file "$DOCKER_PIDFILE")
  if ! pid_is "$pid" dockerd; then
    log "dockerd is not running"
    rm -f "$DOCKER_PIDFILE"
    return 0
  fi
  log "stopping dockerd (pid $pid)"
  stop_process dockerd "$pid" "$DOCKER_STOP_TIMEOUT"
  # The engine stops its own containerd; a containerd whose dockerd was killed is stopped here.
  stop_leftover_containerd
  rm -f "$DOCKER_PIDFILE" "$DOCKER_SOCKET"
  log "dockerd stopped"
}

docker_status() {
  local pid
  pid=$(pid_from_file "$DOCKER_PIDFILE")
  if pid_is "$pid" dockerd && docker_answers; then
    log "docker: dockerd (pid $pid) answers on $DOCKER_HOST_URL"
  else
    log "docker: not running"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# OCI registry

[[ $REGISTRY_PORT =~ ^[0-9]+$ ]] && ((REGISTRY_PORT > 0 && REGISTRY_PORT < 65536)) ||
  die "SLIPWAY_REGISTRY_PORT='$REGISTRY_PORT' is not a TCP port"

# The HTTP status /v2/ answers with, or 000 when nothing answers.
registry_probe() {
  curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$REGISTRY_ADDR/v2/" 2>/dev/null || true
}

# True when our registry answers: with auth on, /v2/ must say 401.
registry_answers() {
  [[ $(registry_probe) == 401 ]]
}

# Prints the password in file $1, generating it (24 alphanumerics, mode 600) on first use.
registry_password() {
  local file="$1" pw
  if [[ ! -s $file ]]; then
    pw=$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 24)
    ((${#pw} == 24)) || die "could not generate a password"
    (umask 077 && printf '%s\n' "$pw" >"$file.tmp")
    mv "$file.tmp" "$file"
  fi
  chmod 600 "$file"
  tr -d '\n' <"$file"
}

registry_write_config() {
  local pw aws_pw secret
  pw=$(registry_password "$REGISTRY_PASSWORD_FILE")
  aws_pw=$(registry_password "$REGISTRY_AWS_PASSWORD_FILE")
  (
    umask 077
    {
      htpasswd -Bbn "$REGISTRY_USER" "$pw"
      htpasswd -Bbn AWS "$aws_pw"
    } | sed '/^$/d' >"$REGISTRY_HTPASSWD.tmp"
  )
  mv "$REGISTRY_HTPASSWD.tmp" "$REGISTRY_HTPASSWD"
  secret=$(head -c 32 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
  # Our own config: the packaged one listens on :5000 on every interface.
  (
    umask 077
    cat >"$REGISTRY_CONFIG" <<YAML
# Written by scripts/test-services.sh; rewritten at every start.
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  secret: $secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: slipway-test-registry
    path: $REGISTRY_HTPASSWD
YAML
  )
}

registry_start() {
  mkdir -p "$REGISTRY_DIR/data"
  chmod 700 "$REGISTRY_DIR"
  rm -f "$REGISTRY_PIDFILE"
  local code
  code=$(registry_probe)
  [[ $code == 000 ]] || die "something else already answers on $REGISTRY_ADDR (HTTP $code); choose another SLIPWAY_REGISTRY_PORT"
  registry_write_config
  log "starting docker-registry on http://$REGISTRY_ADDR (log: $REGISTRY_LOG)"
  setsid "$REGISTRY_BIN" serve "$REGISTRY_CONFIG" </dev/null >"$REGISTRY_LOG" 2>&1 &
  local pid=$!
  disown "$pid" 2>/dev/null || true
  printf '%s\n' "$pid" >"$REGISTRY_PIDFILE"
  wait_answers docker-registry "$pid" "$REGISTRY_LOG" registry_answers "$REGISTRY_START_TIMEOUT" \
    "answer 401 on http://$REGISTRY_ADDR/v2/" registry_last_answer
  log "docker-registry (pid $pid) answers on http://$REGISTRY_ADDR"
}

registry_last_answer() {
  printf 'last: HTTP %s' "$(registry_probe)"
}

# The address the running registry was configured with, from its config file.
registry_configured_addr() {
  sed -n -E 's/^  addr: (.*)$/\1/p' "$REGISTRY_CONFIG" 2>/dev/null || true
}

registry_up() {
  local pid
  pid=$(pid_from_file "$REGISTRY_PIDFILE")
  if pid_is "$pid" docker-registry; then
    if [[ $(registry_configured_addr) != "$REGISTRY_ADDR" ]]; then
      log "docker-registry (pid $pid) listens on $(registry_configured_addr), not $REGISTRY_ADDR; restarting it"
      registry_down
      registry_start
    elif registry_answers; then
      # Passwords may have been removed by hand: make sure the files still match the htpasswd.
      [[ -s $REGISTRY_PASSWORD_FILE && -s $REGISTRY_AWS_PASSWORD_FILE ]] || {
        registry_down
        registry_start
        return 0
      }
      log "reusing docker-registry (pid $pid) on http://$REGISTRY_ADDR"
    else
      log "docker-registry (pid $pid) runs but does not answer 401; restarting it"
      registry_down
      registry_start
    fi
  else
    registry_start
  fi
}

registry_down() {
  local pid
  pid=$(pid_from_file "$REGISTRY_PIDFILE")
  if ! pid_is "$pid" docker-registry; then
    log "docker-registry is not running"
    rm -f "$REGISTRY_PIDFILE"
    return 0
  fi
  log "stopping docker-registry (pid $pid)"
  stop_process docker-registry "$pid" "$REGISTRY_STOP_TIMEOUT"
  rm -f "$REGISTRY_PIDFILE"
  log "docker-registry stopped"
}

registry_status() {
  local pid
  pid=$(pid_from_file "$REGISTRY_PIDFILE")
  if pid_is "$pid" docker-registry && registry_answers; then
    log "registry: docker-registry (pid $pid) answers on http://$REGISTRY_ADDR (users: $REGISTRY_USER, AWS)"
  else
    log "registry: not running (http://$REGISTRY_ADDR/v2/ answers HTTP $(registry_probe))"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Environment file for the tests

write_env() {
  local tmp="$ENV_FILE.tmp"
  (
    umask 077
    {
      printf '# Written by scripts/test-services.sh up; source it to reach the test services.\n'
      printf 'export DOCKER_HOST=%q\n' "$DOCKER_HOST_URL"
      printf 'export SLIPWAY_DOCKER_CLI=%q\n' "$DOCKER_CLI"
      printf 'export SLIPWAY_REGISTRY=%q\n' "$REGISTRY_ADDR"
      printf 'export SLIPWAY_REGISTRY_USER=%q\n' "$REGISTRY_USER"
      printf 'export SLIPWAY_REGISTRY_PASSWORD=%q\n' "$(registry_password "$REGISTRY_PASSWORD_FILE")"
      printf 'export SLIPWAY_REGISTRY_AWS_PASSWORD=%q\n' "$(registry_password "$REGISTRY_AWS_PASSWORD_FILE")"
    } >"$tmp"
  )
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------

usage() {
  printf 'usage: %s up|down|status\n' "$0" >&2
  exit 2
}

main() {
  (($# == 1)) || usage
  case "$1" in
  up)
    mkdir -p "$STATE_DIR"
    install_packages "${PACKAGES[@]}" "${REGISTRY_PACKAGES[@]}"
    docker_up
    registry_up
    write_env
    log "ready; source $ENV_FILE"
    ;;
  down)
    registry_down
    docker_down
    rm -f "$ENV_FILE"
    ;;
  status)
    local rc=0
    docker_status || rc=1
    registry_status || rc=1
    return "$rc"
    ;;
  *) usage ;;
  esac
}

main "$@"

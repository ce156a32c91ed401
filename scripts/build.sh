#!/usr/bin/env bash
# Builds one container image for Slipway's `buildkit` stage, with BuildKit.
#
# usage: build.sh [options] IMAGE CONTEXT_DIR DOCKERFILE UNIQUE_NAME
#
#   IMAGE         the reference to build, repository[:tag]; the stage passes the job's private name
#                 (slipway.local/<job>-<random>:build), never the caller's image_name
#   CONTEXT_DIR   the build context, an existing directory
#   DOCKERFILE    the Dockerfile, an existing file (it may lie outside CONTEXT_DIR)
#   UNIQUE_NAME   a name for this build, unique on the host ([A-Za-z0-9._-]); it names the
#                 build's scratch directory under $TMPDIR
#
# options:
#   --backend docker|buildctl    docker (default): DOCKER_BUILDKIT=1 docker build against the engine
#                                at DOCKER_HOST. buildctl: a remote buildkitd; the image comes back as
#                                a docker archive (--output type=docker) that `docker load` puts into
#                                the engine at DOCKER_HOST, where the push stage finds it.
#   --build-arg NAME             a build argument; its value is read from the environment variable
#                                SLIPWAY_BUILD_ARG_<NAME>, so that values never show in this script's
#                                arguments (repeatable)
#   --label KEY=VALUE            an image label (repeatable)
#   --secret ID=FILE             a BuildKit secret: RUN --mount=type=secret,id=ID reads FILE's content;
#                                docker and buildctl get --secret id=ID,src=FILE, the path only, so the
#                                value is in no process's arguments or environment (repeatable)
#   --network default|host|none  the network of RUN steps (default: the engine's default network;
#                                host: the host's network, loopback services included; none: none)
#   --target STAGE               the Dockerfile stage to build
#   --platform OS/ARCH[/VARIANT] the platform to build for (buildctl: also a comma-separated list)
#   --no-cache                   build without the cache: docker and buildctl get --no-cache
#   --import-cache REF           docker: --cache-from REF; buildctl: --import-cache type=registry,ref=REF
#                                (repeatable)
#   --export-cache REF           buildctl only: --export-cache type=registry,ref=REF,mode=max
#   --addr ADDRESS               buildctl only: buildkitd's address (default: BUILDKIT_HOST, else
#                                buildctl's own default)
#   --tlscacert FILE, --tlscert FILE, --tlskey FILE
#                                buildctl only: mTLS files for buildkitd
#
# environment:
#   SLIPWAY_DOCKER_CLI   the docker CLI (default /usr/bin/docker: docker.io's 20.10 client; a 28.x
#                        client refuses DOCKER_BUILDKIT=1 without the buildx plugin)
#   DOCKER_HOST          the engine (default: the CLI's default)
#   SLIPWAY_BUILDCTL     the buildctl program (default: buildctl on PATH)
#   BUILDKIT_HOST        buildctl's default address
#   DOCKER_CONFIG        the docker CLI's and buildctl's config directory, where both look up
#                        registry credentials for FROM and the cache; the stage passes an empty one,
#                        or one of the build's own with a single registry's auth, never the worker's
#
# Build argument values: with the docker backend they reach the docker CLI through its environment
# (`docker build --build-arg NAME` reads NAME's value from there), so they appear in no process's
# arguments. Names that the docker CLI itself reads (DOCKER_*, *_PROXY, PATH, HOME, ...) would
# change how the CLI behaves; those are passed as --build-arg NAME=VALUE instead. buildctl has no
# such form: its arguments carry --opt build-arg:NAME=VALUE. Build args end up in the image's
# history too: secrets go in --secret files, never in build args.
#
# exit codes: 0 built; 1 the build failed; 2 usage error; 3 the engine (or buildkitd) cannot be reached
set -euo pipefail

readonly ME=build.sh
readonly EXIT_FAILED=1 EXIT_USAGE=2 EXIT_UNREACHABLE=3

say() { printf '%s: %s\n' "$ME" "$*" >&2; }
usage() {
  say "$*"
  say "usage: build.sh [options] IMAGE CONTEXT_DIR DOCKERFILE UNIQUE_NAME (see the header of this script)"
  exit "$EXIT_USAGE"
}

backend=docker
network=""
target=""
platform=""
addr=""
tlscacert=""
tlscert=""
tlskey=""
export_cache=""
no_cache=""
build_args=()
labels=()
secrets=()
import_caches=()
positional=()

need_value() {
  (($2 >= 2)) || usage "option $1 needs a value"
}

while (($# > 0)); do
  case "$1" in
  --backend) need_value "$1" $# && backend="$2" && shift 2 ;;
  --build-arg) need_value "$1" $# && build_args+=("$2") && shift 2 ;;
  --label) need_value "$1" $# && labels+=("$2") && shift 2 ;;
  --secret) need_value "$1" $# && secrets+=("$2") && shift 2 ;;
  --network) need_value "$1" $# && network="$2" && shift 2 ;;
  --target) need_value "$1" $# && target="$2" && shift 2 ;;
  --platform) need_value "$1" $# && platform="$2" && shift 2 ;;
  --no-cache) no_cache=1 && shift ;;
  --import-cache) need_value "$1" $# && import_caches+=("$2") && shift 2 ;;
  --export-cache) need_value "$1" $# && export_cache="$2" && shift 2 ;;
  --addr) need_value "$1" $# && addr="$2" && shift 2 ;;
  --tlscacert) need_value "$1" $# && tlscacert="$2" && shift 2 ;;
  --tlscert) need_value "$1" $# && tlscert="$2" && shift 2 ;;
  --tlskey) need_value "$1" $# && tlskey="$2" && shift 2 ;;
  --) shift && positional+=("$@") && break ;;
  -*) usage "unknown option $1" ;;
  *) positional+=("$1") && shift ;;
  esac
done

((${#positional[@]} == 4)) || usage "expected 4 arguments, got ${#positional[@]}"
image="${positional[0]}"
context_dir="${positional[1]}"
dockerfile="${positional[2]}"
unique="${positional[3]}"

[[ -n $image ]] || usage "IMAGE is empty"
[[ -d $context_dir ]] || usage "CONTEXT_DIR $context_dir is not a directory"
[[ -f $dockerfile ]] || usage "DOCKERFILE $dockerfile is not a file"
[[ $unique =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || usage "UNIQUE_NAME '$unique' must match [A-Za-z0-9][A-Za-z0-9._-]*"
case "$backend" in docker | buildctl) ;; *) usage "--backend '$backend' is not one of docker, buildctl" ;; esac
case "$network" in "" | default | host | none) ;; *) usage "--network '$network' is not one of default, host, none" ;; esac

for name in "${build_args[@]+"${build_args[@]}"}"; do
  [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || usage "--build-arg '$name' is not a valid name"
  value_var="SLIPWAY_BUILD_ARG_$name"
  [[ -n ${!value_var+set} ]] || usage "--build-arg $name: $value_var is not set"
done
for label in "${labels[@]+"${labels[@]}"}"; do
  [[ $label == ?*=* ]] || usage "--label '$label' is not KEY=VALUE"
done
for secret in "${secrets[@]+"${secrets[@]}"}"; do
  [[ ${secret%%=*} =~ ^[A-Za-z0-9_.-]{1,128}$ && ${secret%%=*} != . && ${secret%%=*} != .. ]] ||
    usage "--secret '${secret%%=*}': the id must be 1 to 128 of [A-Za-z0-9_.-], not . or .."
  [[ $secret == *=* && -f ${secret#*=} && -r ${secret#*=} ]] || usage "--secret ${secret%%=*}: '${secret#*=}' is not a readable file"
  [[ ${secret#*=} != *[,\"]* ]] || usage "--secret ${secret%%=*}: the path '${secret#*=}' has a comma or quote"
done
if [[ $backend == docker ]]; then
  [[ -z $export_cache ]] || usage "--export-cache needs the buildctl backend"
  [[ -z $addr && -z $tlscacert && -z $tlscert && -z $tlskey ]] || usage "--addr and --tls* need the buildctl backend"
fi

docker_cli="${SLIPWAY_DOCKER_CLI:-/usr/bin/docker}"
[[ -x $docker_cli ]] || usage "docker CLI $docker_cli is not executable (set SLIPWAY_DOCKER_CLI)"
buildctl="${SLIPWAY_BUILDCTL:-buildctl}"

# The build's scratch directory; the stage gives every build its own TMPDIR and removes it.
work="${TMPDIR:-/tmp}/slipway-build-$unique"
mkdir -m 700 -- "$work" 2>/dev/null || usage "cannot create scratch directory $work (it must not exist yet: UNIQUE_NAME must be unique)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
# Turn signals into an exit so that the EXIT trap runs.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# Runs "$@" and exits with EXIT_UNREACHABLE and what it printed when it fails.
preflight() {
  local what="$1" out
  shift
  if ! out=$("$@" 2>&1); then
    say "cannot reach $what:"
    printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' >&2
    exit "$EXIT_UNREACHABLE"
  fi
}

# Names the docker CLI reads from its own environment: never overwrite them with a build arg.
cli_reserved_name() {
  [[ $1 =~ ^(DOCKER_.*|BUILDKIT_.*|SLIPWAY_.*|PATH|HOME|TMPDIR|USER|SHELL|LD_.*|SSL_CERT_.*|[Hh][Tt][Tt][Pp][Ss]?_[Pp][Rr][Oo][Xx][Yy]|[Nn][Oo]_[Pp][Rr][Oo][Xx][Yy]|[Aa][Ll][Ll]_[Pp][Rr][Oo][Xx][Yy])$ ]]
}

build_with_docker() {
  preflight "the Docker engine at ${DOCKER_HOST:-the default socket of the CLI}" \
    "$docker_cli" version --format '{{.Server.Version}}'

  local args=(build --progress=plain --file "$dockerfile" --tag "$image" --iidfile "$work/image-id")
  [[ -n $network && $network != default ]] && args+=(--network "$network")
  [[ -n $target ]] && args+=(--target "$target")
  [[ -n $platform ]] && args+=(--platform "$platform")
  [[ -n $no_cache ]] && args+=(--no-cache)
  local label ref name value_var
  for label in "${labels[@]+"${labels[@]}"}"; do args+=(--label "$label"); done
  for ref in "${import_caches[@]+"${import_caches[@]}"}"; do args+=(--cache-from "$ref"); done
  local secret
  for secret in "${secrets[@]+"${secrets[@]}"}"; do args+=(--secret "id=${secret%%=*},src=${secret#*=}"); done
  (
    for name in "${build_args[@]+"${build_args[@]}"}"; do
      value_var="SLIPWAY_BUILD_ARG_$name"
      if cli_reserved_name "$name"; then
        args+=(--build-arg "$name=${!value_var}")
      else
        export "$name=${!value_var}"
        args+=(--build-arg "$name")
      fi
    done
    args+=("$context_dir")
    export DOCKER_BUILDKIT=1
    exec "$docker_cli" "${args[@]}"
  ) || exit "$EXIT_FAILED"
  say "built $image ($(cat "$work/image-id" 2>/dev/null || echo 'no image id'))"
}

build_with_buildctl() {
  local global=()
  [[ -n $addr ]] && global+=(--addr "$addr")
  [[ -n $tlscacert ]] && global+=(--tlscacert "$tlscacert")
  [[ -n $tlscert ]] && global+=(--tlscert "$tlscert")
  [[ -n $tlskey ]] && global+=(--tlskey "$tlskey")
  preflight "buildkitd at ${addr:-${BUILDKIT_HOST:-the default address of buildctl}}" \
    "$buildctl" "${global[@]+"${global[@]}"}" debug workers
  preflight "the Docker engine at ${DOCKER_HOST:-the default socket of the CLI}" \
    "$docker_cli" version --format '{{.Server.Version}}'

  local args=(build --progress=plain --frontend dockerfile.v0
    --local "context=$context_dir"
    --local "dockerfile=$(dirname -- "$dockerfile")"
    --opt "filename=$(basename -- "$dockerfile")")
  [[ -n $target ]] && args+=(--opt "target=$target")
  [[ -n $platform ]] && args+=(--opt "platform=$platform")
  [[ -n $no_cache ]] && args+=(--no-cache)
  case "$network" in
  host) args+=(--opt force-network-mode=host --allow network.host) ;;
  none) args+=(--opt force-network-mode=none) ;;
  esac
  local name value_var label ref secret
  for name in "${build_args[@]+"${build_args[@]}"}"; do
    value_var="SLIPWAY_BUILD_ARG_$name"
    args+=(--opt "build-arg:$name=${!value_var}")
  done
  for label in "${labels[@]+"${labels[@]}"}"; do args+=(--opt "label:$label"); done
  for secret in "${secrets[@]+"${secrets[@]}"}"; do args+=(--secret "id=${secret%%=*},src=${secret#*=}"); done
  for ref in "${import_caches[@]+"${import_caches[@]}"}"; do args+=(--import-cache "type=registry,ref=$ref"); done
  [[ -n $export_cache ]] && args+=(--export-cache "type=registry,ref=$export_cache,mode=max")
  args+=(--output "type=docker,name=$image")

  "$buildctl" "${global[@]+"${global[@]}"}" "${args[@]}" | "$docker_cli" load || exit "$EXIT_FAILED"
  say "built $image"
}

say "building $image with $backend (context $context_dir, Dockerfile $dockerfile)"
case "$backend" in
docker) build_with_docker ;;
buildctl) build_with_buildctl ;;
esac

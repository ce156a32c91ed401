#!/usr/bin/env bash
# Runs every test of Slipway, with the real services they need.
#
#   scripts/test.sh [extra maven arguments]
#
# On a fresh Debian 12 machine, as root: installs and starts what is missing (the Docker engine
# with BuildKit and a base image, through scripts/test-services.sh), runs the whole Maven build
# with its tests, and stops the services it started. Under CI (CI=true) a missing Docker engine
# fails the Docker tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."

export SLIPWAY_STATE_DIR="${SLIPWAY_STATE_DIR:-/tmp/slipway-services}"
started_services=false
cleanup() {
  if [[ "$started_services" == true ]]; then
    scripts/test-services.sh down || true
  fi
}
# Before `up`: a start that fails half-way must not leave an engine running.
trap cleanup EXIT
if [[ "$(id -u)" == 0 ]]; then
  if ! scripts/test-services.sh status >/dev/null 2>&1; then
    started_services=true
  fi
  scripts/test-services.sh up
  # shellcheck disable=SC1091
  source "$SLIPWAY_STATE_DIR/env"
else
  echo "test.sh: not root, so the Docker engine cannot be installed or started;" \
       "tests that need it are skipped" >&2
fi

if [[ "${CI:-}" == "true" ]]; then
  export SLIPWAY_REQUIRE_DOCKER=1
fi

mvn -B -ntp verify "$@"

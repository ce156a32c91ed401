#!/usr/bin/env bash
# The clone alone: `git clone --depth 1` against the git stage, cold and from its mirror cache.
#
#   scripts/bench-clone.sh [--rounds N] [--repo BARE_REPOSITORY_DIR]
#
# Serves one repository over smart HTTP on 127.0.0.1 (worker-testkit's GitHttpServer: git
# http-backend, one process per request, basic auth) and times, interleaved round by round:
# `git clone --depth 1 --branch B --single-branch` (the token as an Authorization header); the git
# stage with its cache off; the stage with an empty mirror cache (cold); the same stage again (the
# mirror has everything, the files are written: no checkout is made ready on a repository's first
# clone); again (from the cache, unchanged branch: the ready checkout the second clone left); and
# again after one new commit was pushed (the mirror fetches the commit, the checkout is written). Between two of the stage's clones it
# waits for the stage's background work, as between jobs, and prints how long that took. Prints the median, min and max of each and
# its ratio to git's median. Without --repo it makes a repository of 3000 commits, 1500 text files
# and a 4 MiB binary (about 25 MiB checked out). The stage runs in one JVM after a warm-up round,
# as in a worker that has served jobs; each figure is Stage.execute, call to checkout on disk.
# Needs git and a JDK 17+; builds plugin-git's test classes offline first (MAVEN_REPO_LOCAL picks
# the local Maven repository, default ~/.m2/repository).
set -euo pipefail
cd "$(dirname "$0")/.."
M2=(-B -ntp -q -o)
[[ -n "${MAVEN_REPO_LOCAL:-}" ]] && M2+=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")
WORK=$(mktemp -d /tmp/slipway-bench-clone.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mvn "${M2[@]}" test-compile -pl plugin-git
mvn "${M2[@]}" dependency:build-classpath -pl plugin-git -Dmdep.includeScope=test \
  -Dmdep.outputFile="$WORK/classpath" >/dev/null
CP="plugin-git/target/test-classes:plugin-git/target/classes:$(cat "$WORK/classpath")"
# JGit logs through SLF4J; without a binding it prints one warning, which is all it would say.
# Not exec: the trap removes the work folder when java is done.
java -cp "$CP" dev.slipway.plugin.git.CloneBench --work "$WORK/run" "$@"

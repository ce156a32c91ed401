#!/usr/bin/env bash
# Links the worker's runtime image from the staged distribution.
#
#   build-image.sh STAGING_DIR TARGET_DIR VERSION
#
# STAGING_DIR holds bin/worker, conf/, scripts/, modules/ (the runtime's jars) and plugins/<id>/.
# The result is TARGET_DIR/slipway-worker (a jlink image of exactly the JDK modules that jdeps
# finds the code to need, with our jars beside it) and TARGET_DIR/slipway-worker-VERSION-linux-x64.tar.gz.
#
# Why jars beside a JDK-only image rather than one image of everything: jlink links only explicit
# modules, and gRPC, protobuf, typesafe-config, JGit, docker-java and the AWS SDK are automatic
# modules. Keeping them as jars on a module path (and plugins in their own layers, which jlink
# could not express anyway) keeps the third-party jars exactly as published.
set -euo pipefail
staging=$1 target=$2 version=$3
image="$target/slipway-worker"
jdk_bin="${JAVA_HOME:+$JAVA_HOME/bin/}"

shopt -s nullglob
jars=("$staging"/modules/*.jar "$staging"/plugins/*/*.jar)
(( ${#jars[@]} > 0 )) || { echo "build-image: no jars in $staging" >&2; exit 1; }
module_path="$staging/modules"
for folder in "$staging"/plugins/*/; do module_path+=":$folder"; done

# What the code needs, as jdeps sees it (the list is minimal: java.sql stands for the java.logging
# and java.xml it requires transitively); plus what is reached only by reflection or service
# loading: EC ciphers for TLS (jdk.crypto.ec), DNS through JNDI for gRPC's name resolver
# (jdk.naming.dns), zip file systems (jdk.zipfs), and jdk.net for httpclient5's socket options.
found=$("${jdk_bin}jdeps" --ignore-missing-deps --multi-release 17 --print-module-deps \
    --module-path "$module_path" "${jars[@]}" 2>/dev/null | tail -1 \
  | tr ',' '\n' | grep -E '^(java|jdk)\.' | sort -u | paste -sd, -)
[[ -n "$found" ]] || { echo "build-image: jdeps found no JDK modules" >&2; exit 1; }
# Explicit modules must also find every JDK module their descriptor requires (error_prone's
# annotations require java.compiler, which no class uses), or the boot layer will not resolve.
required=$(for jar in "${jars[@]}"; do "${jdk_bin}jar" --file "$jar" --describe-module --release 17 2>/dev/null; done \
  | awk '$1 == "requires" && $2 != "static" && $2 ~ /^(java|jdk)\./ {print $2}' | sort -u | paste -sd, -)
modules=$(echo "$found${required:+,$required},jdk.crypto.ec,jdk.naming.dns,jdk.net,jdk.zipfs" | tr , "\n" | sort -u | paste -sd, -)
echo "build-image: JDK modules: $modules"

rm -rf "$image"
"${jdk_bin}jlink" --add-modules "$modules" --output "$image" \
  --strip-debug --no-header-files --no-man-pages --compress=2 --generate-cds-archive

cp -r "$staging/bin/." "$image/bin/"
mkdir -p "$image/conf" "$image/scripts"
cp -r "$staging/conf/." "$image/conf/"
cp -r "$staging/scripts/." "$image/scripts/"
cp -r "$staging/modules" "$image/modules"
cp -r "$staging/plugins" "$image/plugins"
chmod 755 "$image/bin/worker" "$image/scripts/"*.sh
printf 'SLIPWAY_VERSION="%s"\n' "$version" >> "$image/release"

# An application class-data archive (AppCDS) of what a worker loads to start serving: a training
# run starts it once and stops it with SIGTERM, and the JVM writes the archive as it exits.
# bin/worker uses it when present; a JVM whose module path no longer matches ignores it.
train=$(mktemp -d)
# [git] alone: the training run must start on a machine without Docker too.
printf 'worker { bind-address = 127.0.0.1, port = 0, workspace-root = "%s/ws", pipeline = [git] }\n' \
  "$train" > "$train/worker.conf"
JAVA_OPTS="-XX:ArchiveClassesAtExit=$image/lib/slipway.jsa -Xlog:cds*=off -Xlog:cds+dynamic*=off" \
  SLIPWAY_NO_APPCDS=1 "$image/bin/worker" serve --config "$train/worker.conf" >/dev/null 2>"$train/log" &
pid=$!
for _ in $(seq 300); do
  grep -q 'listening on' "$train/log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -TERM "$pid" 2>/dev/null; then
  wait "$pid" || true
else
  echo "build-image: the training run ended early:" >&2; cat "$train/log" >&2
fi
rm -rf "$train"
[[ -f "$image/lib/slipway.jsa" ]] || echo "build-image: no AppCDS archive was written; the image works without" >&2

tar -C "$target" -czf "$target/slipway-worker-$version-linux-x64.tar.gz" slipway-worker
echo "build-image: $image ($(du -sh "$image" | cut -f1)), $target/slipway-worker-$version-linux-x64.tar.gz"

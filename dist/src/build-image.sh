#!/usr/bin/env bash
# Links the worker's runtime image from the staged distribution.
#
#   build-image.sh STAGING_DIR TARGET_DIR VERSION JDK
#
# STAGING_DIR holds bin/worker, conf/, scripts/, modules/ (the runtime's jars) and plugins/<id>/.
# The result is TARGET_DIR/slipway-worker (a jlink image of exactly the JDK modules that jdeps
# finds the code to need, with our jars beside it) and TARGET_DIR/slipway-worker-VERSION-linux-x64.tar.gz.
# JDK is the JDK the image is linked from (dist/pom.xml: slipway.image.jdk, Temurin 25 by
# default): 25 or later gets an AOT cache, 17 to 24 an AppCDS archive (see train.sh).
#
# Why jars beside a JDK-only image rather than one image of everything: jlink links only explicit
# modules, and gRPC, protobuf, typesafe-config, JGit, docker-java and the AWS SDK are automatic
# modules. Keeping them as jars on a module path (and plugins in their own layers, which jlink
# could not express anyway) keeps the third-party jars exactly as published.
set -euo pipefail
staging=$1 target=$2 version=$3 jdk=${4:-${JAVA_HOME:-}}
image="$target/slipway-worker"
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z "$jdk" || ! -x "$jdk/bin/jlink" ]]; then
  echo "build-image: no JDK with jlink at '${jdk}': the image is linked from the JDK that" \
    "-Dslipway.image.jdk names (default /usr/lib/jvm/temurin-25-jdk-amd64, which gives the" \
    "AOT cache); install it there, or pass -Dslipway.image.jdk=<a JDK 17 or later>" >&2
  exit 1
fi
jdk_bin="$jdk/bin/"
jdk_major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$jdk/release")
(( ${jdk_major:-0} >= 17 )) || { echo "build-image: $jdk is not a JDK 17 or later" >&2; exit 1; }
echo "build-image: linking from JDK $jdk_major at $jdk"

shopt -s nullglob
jars=("$staging"/modules/*.jar "$staging"/plugins/*/*.jar)
(( ${#jars[@]} > 0 )) || { echo "build-image: no jars in $staging" >&2; exit 1; }
# Signed jars (BouncyCastle, JGit) are checked against their signatures here, once, and copied
# without them: the JVM would otherwise check them again on every start (see StripSignatures).
"${jdk_bin}java" "$here/StripSignatures.java" "${jars[@]}"
# Modular jars get the ModulePackages attribute javac leaves out, so that reading a plugin
# folder does not list every entry of every jar at every start (see AddModulePackages). It
# needs the ClassFile API of JDK 24; a JDK 17 image does without.
if (( jdk_major >= 24 )); then
  "${jdk_bin}java" "$here/AddModulePackages.java" "${jars[@]}"
fi
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
# JDK 21 renamed the compression levels; zip-6 is what 2 was.
compress=2
(( jdk_major >= 21 )) && compress=zip-6
# Linked from the JDK's jmods, or from its run-time image where it has none (JEP 493: Temurin 25).
"${jdk_bin}jlink" --add-modules "$modules" --output "$image" \
  --strip-debug --no-header-files --no-man-pages --compress=$compress --generate-cds-archive

cp -r "$staging/bin/." "$image/bin/"
mkdir -p "$image/conf" "$image/scripts"
cp -r "$staging/conf/." "$image/conf/"
cp -r "$staging/scripts/." "$image/scripts/"
cp -r "$staging/modules" "$image/modules"
cp -r "$staging/plugins" "$image/plugins"
chmod 755 "$image/bin/worker" "$image/scripts/"*.sh
printf 'SLIPWAY_VERSION="%s"\n' "$version" >> "$image/release"

# The class-data cache of a training run (train.sh): an AOT cache on JDK 25, AppCDS on 17.
"$here/train.sh" "$image"

tar -C "$target" -czf "$target/slipway-worker-$version-linux-x64.tar.gz" slipway-worker
echo "build-image: $image ($(du -sh "$image" | cut -f1)), $target/slipway-worker-$version-linux-x64.tar.gz"

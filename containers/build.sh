#!/usr/bin/env bash
# Builds a step image of containers/<name>/ with podman and writes it as an OCI archive, ready for
#   minipach containers add <name> --from <archive>
# Usage: containers/build.sh <name> <archive>. The busybox image copies the machine's busybox-static
# (apt install busybox-static) into its build context, so no registry is needed.
set -euo pipefail
name="$1"; out="$2"
here="$(cd "$(dirname "$0")" && pwd)"
ctx="$(mktemp -d)"; trap 'rm -rf "$ctx"' EXIT
cp -r "$here/$name/." "$ctx/"
if [ "$name" = busybox ]; then cp /bin/busybox "$ctx/busybox"; fi
podman build -q -t "localhost/minipach-$name:latest" "$ctx" >/dev/null
podman save -q --format oci-archive -o "$out" "localhost/minipach-$name:latest"
echo "$out"

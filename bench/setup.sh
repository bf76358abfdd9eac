#!/usr/bin/env bash
# Installs the bench's peers and tools with apt when they are missing: Snakemake, GNU time.
set -euo pipefail
need=()
command -v snakemake >/dev/null 2>&1 || need+=(snakemake)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]} with apt" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

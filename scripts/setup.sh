#!/usr/bin/env bash
# Installs the system packages minipach needs (git, git-annex, datalad, redis-server) and the demo's container
# runtime (podman, runc, busybox-static to build its image from: no registry needed) when they are missing;
# with --tests, also the private Slurm cluster the suite runs against (slurm-wlm, munge) and the browser the
# dashboard's tests drive (Debian's chromium, through playwright-core: no browser download).
# Idempotent; runs as root (or through sudo). Used by `npm test` (with --tests) and `npm run demo`.
set -euo pipefail

need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v git-annex >/dev/null 2>&1 || need+=(git-annex)
command -v datalad >/dev/null 2>&1 || need+=(datalad)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# The demo's container pipeline (and the tests'): podman, runc, and busybox-static to build its image from.
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ "${1:-}" = "--tests" ]; then
  command -v slurmctld >/dev/null 2>&1 || need+=(slurm-wlm)
  command -v munged >/dev/null 2>&1 || need+=(munge)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} with apt" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to apt-get install ${need[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# git refuses to commit without an identity; give this machine one only if it has none.
if ! git config --global --get user.email >/dev/null 2>&1 && [ -z "${GIT_AUTHOR_EMAIL:-}" ]; then
  git config --global user.name "minipach user"
  git config --global user.email "minipach@localhost"
fi
echo "setup: git-annex $(git annex version --raw 2>/dev/null || echo '?'), $(datalad --version 2>/dev/null), $(redis-server --version | cut -d' ' -f3)" >&2

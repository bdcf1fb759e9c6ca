#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian 12 machine (Docker
# engine, Chromium, busybox for test images, restic for benchmarks, GNU time,
# PostgreSQL for the control plane's catalogue suites: they start their own
# throwaway cluster) and makes sure dockerd is running. Idempotent; needs
# root (or sudo).
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

packages=(docker.io chromium busybox-static restic time zstd xfsprogs postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! as_root docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  as_root sh -c 'nohup dockerd >/var/log/kova-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    as_root docker info >/dev/null 2>&1 && break
    sleep 1
  done
  as_root docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/kova-dockerd.log" >&2; exit 1; }
fi
echo "test dependencies ready"

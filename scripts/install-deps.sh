#!/usr/bin/env bash
# Installs the Debian packages kvcascade needs to build, test, fuzz and evaluate
# (chromium: the server test that drives the chat page at GET / in a headless browser; nginx:
# the test of two replicas behind it, docs/deploy.md).
# Safe to run again: apt-get skips what is already there.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libhwy-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libfmt-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev
  clang libclang-rt-14-dev
  python3 python3-pip python3-venv
  bible-kjv bible-kjv-text gnuplot-nox wamerican
  chromium nginx
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

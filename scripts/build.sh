#!/usr/bin/env bash
# Configures and builds kvcascade in build/ (Release). Extra arguments go to cmake's configure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# Progress goes to stderr: stdout stays for what the caller runs next (demo.sh streams text).
cmake --build build -j"$(nproc)" >&2

#!/usr/bin/env bash
# Configures and builds kvcascade in build/ (Release). Extra arguments go to cmake's configure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# ccache, where a developer has it, makes a fresh worktree's build cheap; CI has none and loses nothing.
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@" >/dev/null
# Progress goes to stderr: stdout stays for what the caller runs next (demo.sh streams text).
cmake --build build -j"$(nproc)" >&2

#!/usr/bin/env bash
# Fuzzes the GGUF reader and the session-file loader with libFuzzer (clang, AddressSanitizer,
# UndefinedBehaviorSanitizer), SECONDS each.
#   scripts/fuzz.sh [SECONDS]   (default 60)
# The GGUF seeds are the small files in fuzz/corpus/gguf (written by tests/support/gguf_writer);
# the session target makes its own valid files (fuzz/session_file_fuzz.cc). Inputs libFuzzer
# finds go to build-fuzz/corpus/<target> so the committed seeds stay as they are.
# Exits non-zero on a finding; the crashing input is left in build-fuzz/artifacts/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-60}

CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKVC_FUZZ=ON -DKVC_BENCH=OFF >/dev/null
cmake --build build-fuzz --target gguf_fuzz session_file_fuzz -j"$(nproc)"

mkdir -p build-fuzz/corpus/gguf build-fuzz/corpus/session build-fuzz/artifacts
run() {
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "build-fuzz/$1" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/ "${@:2}"
}
run gguf_fuzz build-fuzz/corpus/gguf fuzz/corpus/gguf
run session_file_fuzz build-fuzz/corpus/session

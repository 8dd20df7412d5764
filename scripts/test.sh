#!/usr/bin/env bash
# Everything the tests need on a fresh machine, then every test:
#   1. Debian packages, both shipped models, the KJV text
#   2. Release build: unit tests and integration tests on the real models (ctest), then
#      `kvcascade serve` driven by the openai client (pytest in a private venv, tests/server)
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build: unit tests, then the CLI on bad
#      flags, bad files and a seeded sample of mutated models (scripts/mutation-test.sh; the
#      sample changes daily, KVC_MUTATION_SEED / KVC_MUTATION_COUNT pin it)
#   4. libFuzzer on the GGUF reader for a short while
# KVC_FUZZ_SECONDS (default 60) sets the fuzzing time; KVC_SKIP_SANITIZERS=1 skips steps 3-4.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
# Every ctest summary goes here too, for the closing count.
summaries=$(mktemp)
trap 'rm -f "$summaries"' EXIT

bash scripts/install-deps.sh
bash scripts/fetch-model.sh all
bash scripts/prepare-text.sh

echo "== release build and tests" >&2
bash scripts/build.sh
(cd build && ctest --output-on-failure -j"$jobs" --timeout 1200) | tee -a "$summaries"

echo "== server tests: the openai client against kvcascade serve on loopback" >&2
python=$(bash scripts/python-env.sh)
(cd tests/server && timeout 1200 "$python" -m pytest -q -p no:cacheprovider) | tee -a "$summaries"

if [ "${KVC_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== unit tests under AddressSanitizer and UndefinedBehaviorSanitizer" >&2
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKVC_SANITIZE=ON -DKVC_BENCH=OFF \
    -DCMAKE_CXX_FLAGS="-O1" >/dev/null
  cmake --build build-asan -j"$jobs" --target unit_tests kvcascade
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j"$jobs" -L unit --timeout 1200) | tee -a "$summaries"

  echo "== the CLI under the sanitizers: bad flags, bad files, mutated models" >&2
  bash scripts/mutation-test.sh --bin build-asan/kvcascade | tee -a "$summaries"

  echo "== fuzzing the GGUF reader and the session-file loader" >&2
  bash scripts/fuzz.sh "${KVC_FUZZ_SECONDS:-60}"
fi

# The sanitized CLI's counts, then one closing line for all the ctest runs above (a failure has
# already stopped the script).
grep -E '^(cases|mutation): |^[0-9]+ passed' "$summaries" || true
sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1 \2/p' "$summaries" |
  awk '{ failed += $1; total += $2 } END { printf "tests: %d passed, %d failed\n", total - failed, failed }'

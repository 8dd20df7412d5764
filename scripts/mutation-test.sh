#!/usr/bin/env bash
# The CLI against hostile input, meant for a sanitizer build (ASan + UBSan):
#   1. a handful of bad flags and bad files (missing, a directory, a FIFO, a symlink loop, a
#      device, truncated, empty), and tests/cli-bad-flags.txt with the exit code each must give
#   2. a seeded sample of in-place mutations of both models' headers (tools/mutate-gguf.py:
#      scalar metadata, type tags, tensor table, NaN norms), each through `info` and a 2-token
#      greedy `generate`
# Every run must end with exit 0 and output, or exit 1/2 with one "kvcascade: error:" line last
# on stderr (or, exit 2, CLI11's flag message); a sanitizer report, a signal or a timeout fails. Mutated copies live in a temp dir
# that is removed at the end; the models themselves are never written.
#
#   scripts/mutation-test.sh [--bin PATH] [--count N] [--seed S] [--timeout SECONDS] [--plan FILE]
# Defaults: build-asan/kvcascade, 100 mutations, seed = today's date (UTC, YYYYMMDD; so each
# day samples others), 60 s per run. --plan runs the mutations of a file in the format of
# `tools/mutate-gguf.py plan` instead (a failure's line, to reproduce it alone). KVC_MUTATION_SEED and KVC_MUTATION_COUNT override too.
# Prints "cases: N passed, N failed" and "mutation: N passed, N failed"; exits 1 on a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bin=build-asan/kvcascade
count=${KVC_MUTATION_COUNT:-100}
seed=${KVC_MUTATION_SEED:-$(date -u +%Y%m%d)}
limit=60
plan=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --timeout) limit=$2; shift 2 ;;
    --plan) plan=$2; shift 2 ;;
    *) echo "mutation-test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "mutation-test.sh: no kvcascade binary at $bin" >&2; exit 2; }
models=(models/gemma-3-270m-q4_k_m.gguf models/SmolLM2-135M-Instruct.Q4_1.gguf)
for m in "${models[@]}"; do
  [ -f "$m" ] || { echo "mutation-test.sh: $m is missing (scripts/fetch-model.sh all)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvc-mutation.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Leaks, heap errors and UB all fail the run; a huge allocation returns null (so the engine's
# bad_alloc handling is what gets tested) instead of taking the machine's memory.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=4096:hard_rss_limit_mb=6144
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# check NAME ARGS...: runs the binary and prints "" if the run is acceptable, else why not.
check() {
  local rc=0
  timeout -k 5 "$limit" "$bin" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
  echo "$rc" >"$tmp/rc"
  if grep -qE 'Sanitizer|runtime error:' "$tmp/err"; then
    echo "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error:' "$tmp/err")"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "no end within ${limit} s"
  elif [ "$rc" -gt 128 ]; then
    echo "killed by signal $((rc - 128))"
  elif [ "$rc" = 0 ]; then
    [ -s "$tmp/out" ] || echo "exit 0 without output"
  elif [ "$rc" = 2 ] && [ "$(wc -l <"$tmp/err")" -le 2 ] &&
       tail -n 1 "$tmp/err" | grep -q '^Run with --help for more information'; then
    :  # a flag error in CLI11's words: the message, then the pointer to --help
  elif [ "$rc" = 1 ] || [ "$rc" = 2 ]; then
    local errors
    errors=$(grep -c '^kvcascade: error: ' "$tmp/err" || true)
    if [ "$errors" != 1 ] || ! tail -n 1 "$tmp/err" | grep -q '^kvcascade: error: '; then
      echo "exit $rc without one closing error line: $(tail -n 3 "$tmp/err" | tr '\n' '|')"
    fi
  else
    echo "exit $rc"
  fi
}

# ---- 1. fixed cases ------------------------------------------------------------------------
smol=models/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir "$tmp/dir"
mkfifo "$tmp/fifo"
ln -s "$tmp/loop2" "$tmp/loop1"
ln -s "$tmp/loop1" "$tmp/loop2"
: >"$tmp/empty.gguf"
head -c 100000 "$smol" >"$tmp/truncated.gguf"
cases=(
  "info -m $tmp/missing.gguf"
  "info -m $tmp/dir"
  "info -m $tmp/fifo"
  "info -m $tmp/loop1"
  "info -m /dev/null"
  "info -m $tmp/empty.gguf"
  "info -m $tmp/truncated.gguf"
  "generate -m $tmp/truncated.gguf -p Hello -n 2"
  "generate -m $smol -p Hello -n -5"
  "generate -m $smol -p Hello --temp nan"
  "generate -m $smol -p Hello --top-p 2"
  "generate -m $smol -p Hello --cache bogus"
  "generate -m $smol -p Hello -t 0"
  "generate -m $smol -p Hello --cascades 0"
  "generate -m $smol -p Hello -n 2 --temp 0 --sinks 2147483647"
  "info -m $smol --sinks 2147483647"
  "generate -m $smol -p Hello -n 2 --temp 0 -c 1099511627776 --cache full"
  "generate -m $smol -f $tmp/dir -n 2"
  "bench -m $smol --along 9223372036854775807k"
  "passkey -m $smol --lengths 9223372036854775807k"
)
passed=0 failed=0
for c in "${cases[@]}"; do
  # shellcheck disable=SC2086  # each case is a word list by design
  why=$(check $c)
  if [ -z "$why" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL kvcascade $c: $why" >&2
  fi
done
# The bad-flag list kept beside the CLI tests: each line's exit code must be the one it names.
while read -r want args; do
  case "$want" in ''|'#'*) continue ;; esac
  # shellcheck disable=SC2086
  why=$(eval "check $args")
  rc=$(cat "$tmp/rc")
  if [ -z "$why" ] && [ "$rc" != "$want" ]; then why="exit $rc, expected $want"; fi
  if [ -z "$why" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL kvcascade $args: $why" >&2
  fi
done < tests/cli-bad-flags.txt
echo "cases: $passed passed, $failed failed"
cases_failed=$failed

# ---- 2. mutations --------------------------------------------------------------------------
[ -n "$plan" ] || echo "== mutations: $count, seed $seed (--seed $seed reproduces them), $bin" >&2
for m in "${models[@]}"; do cp -L "$m" "$tmp/$(basename "$m")"; done
if [ -n "$plan" ]; then
  cp "$plan" "$tmp/plan"
else
  python3 tools/mutate-gguf.py plan --seed "$seed" --count "$count" "${models[@]}" >"$tmp/plan"
fi
passed=0 failed=0
while IFS=$'\t' read -r model offset bytes what; do
  copy="$tmp/$(basename "$model")"
  old=$(python3 tools/mutate-gguf.py patch "$copy" "$offset" "$bytes")
  why=$(check info -m "$copy")
  [ -n "$why" ] && why="info: $why"
  if [ -z "$why" ]; then
    why=$(check generate -m "$copy" -p Hello -n 2 --temp 0)
    [ -n "$why" ] && why="generate: $why"
  fi
  python3 tools/mutate-gguf.py patch "$copy" "$offset" "$old" >/dev/null
  if [ -z "$why" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $model $offset $bytes ($what): $why" >&2
  fi
done <"$tmp/plan"
echo "mutation: $passed passed, $failed failed"
[ "$cases_failed" = 0 ] && [ "$failed" = 0 ]

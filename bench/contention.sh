#!/usr/bin/env bash
# Decode speed when threads outnumber the free cores (issue 14, item 2). Each case runs
# `kvcascade generate -p Hello -n N --temp 0 --ignore-eos` and is set against `-t 1` alone on the
# CPUs that are actually free in that case, run right before it; rounds alternate through the
# cases so that drift on a shared machine hits all of them alike. Prints a markdown table of the
# median tokens/s per case and its ratio to the single-thread rate. Target: the default thread
# count never below 0.70.
#
#   bench/contention.sh [-k KVCASCADE] [-b BASELINE_KVCASCADE] [-m MODEL] [-n TOKENS]
#                       [-r ROUNDS] [-c CPU_A,CPU_B]
# CPU_A and CPU_B (default: the first two CPUs this shell may use) stand for a 2-core machine;
# the busy neighbour is a shell loop pinned to CPU_B. -b runs every case with a second binary
# too (the build before a change), interleaved with the first, in extra columns.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvc="$root/build/kvcascade"
base=""
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
tokens=64
rounds=3
pair=""
while getopts "k:b:m:n:r:c:h" opt; do
  case $opt in
    k) kvc=$OPTARG ;;
    b) base=$OPTARG ;;
    m) model=$OPTARG ;;
    n) tokens=$OPTARG ;;
    r) rounds=$OPTARG ;;
    c) pair=$OPTARG ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
for b in "$kvc" ${base:+"$base"}; do
  [ -x "$b" ] || { echo "contention: no $b; run scripts/build.sh" >&2; exit 1; }
done
[ -f "$model" ] || { echo "contention: no model $model; run scripts/fetch-model.sh" >&2; exit 1; }
if [ -z "$pair" ]; then
  pair=$(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(f"{c[0]},{c[1]}" if len(c) > 1 else "")')
  [ -n "$pair" ] || { echo "contention: needs two CPUs" >&2; exit 1; }
fi
a=${pair%,*}
b=${pair#*,}

neighbour=""
stop_neighbour() { if [ -n "$neighbour" ]; then kill "$neighbour" 2>/dev/null || true; wait "$neighbour" 2>/dev/null || true; neighbour=""; fi; }
work=$(mktemp -d)
trap 'stop_neighbour; rm -rf "$work"' EXIT

# rate BINARY CPUS [THREADS]: decode tokens/s of one generate run on CPUS ("" threads: the default)
rate() {
  local bin=$1 cpus=$2 threads=${3:-}
  taskset -c "$cpus" "$bin" generate -m "$model" -p Hello -n "$tokens" --temp 0 --ignore-eos \
      ${threads:+-t "$threads"} 2>&1 >/dev/null |
    sed -n 's/.*generation: [0-9]* tokens in [0-9.]* ms (\([0-9.]*\) t\/s.*/\1/p'
}

# The cases: name | CPUs | threads ("" = default) | neighbour on CPU_B | CPUs free for -t 1
cases=(
  "one CPU, default threads|$a||no|$a"
  "two CPUs, -t 2, busy neighbour on one|$a,$b|2|yes|$a"
  "two CPUs, default threads, busy neighbour on one|$a,$b||yes|$a"
  "two CPUs, -t 2, no neighbour|$a,$b|2|no|$a"
  "two CPUs, -t 3, no neighbour|$a,$b|3|no|$a"
  "two CPUs, -t 4, no neighbour|$a,$b|4|no|$a"
  "two CPUs, -t 8, no neighbour|$a,$b|8|no|$a"
)

bins=("$kvc")
[ -n "$base" ] && bins+=("$base")
echo "contention: ${#cases[@]} cases x $rounds rounds x ${#bins[@]} binaries, $tokens tokens each, CPUs $a,$b" >&2
for ((r = 1; r <= rounds; r++)); do
  for i in "${!cases[@]}"; do
    IFS='|' read -r name cpus threads busy free <<<"${cases[$i]}"
    if [ "$busy" = yes ]; then
      taskset -c "$b" bash -c 'while :; do :; done' &
      neighbour=$!
    fi
    for j in "${!bins[@]}"; do
      echo "$(rate "${bins[$j]}" "$free" 1)" >>"$work/ref.$i.$j"
      echo "$(rate "${bins[$j]}" "$cpus" "$threads")" >>"$work/case.$i.$j"
    done
    stop_neighbour
  done
  echo "contention: round $r done" >&2
done

median() { sort -g "$1" | awk 'NF { v[n++] = $1 } END { if (n == 0) print "-"; else if (n % 2) print v[(n - 1) / 2]; else printf "%.1f\n", (v[n / 2 - 1] + v[n / 2]) / 2 }'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (x == "-" || y == "-" || y == 0) print "-"; else printf "%.2f\n", x / y }'; }

echo "model $(basename "$model"), $tokens tokens, $rounds rounds (medians), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), CPUs $a,$b; $(date -u '+%F %H:%M UTC'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
header="| case | threads | t/s | -t 1 alone t/s | ratio |"
rule="|---|---:|---:|---:|---:|"
if [ -n "$base" ]; then
  header="$header baseline t/s | baseline -t 1 t/s | baseline ratio |"
  rule="$rule---:|---:|---:|"
fi
echo "$header"
echo "$rule"
for i in "${!cases[@]}"; do
  IFS='|' read -r name cpus threads busy free <<<"${cases[$i]}"
  row="| $name | ${threads:-default} |"
  for j in "${!bins[@]}"; do
    c=$(median "$work/case.$i.$j")
    f=$(median "$work/ref.$i.$j")
    row="$row $c | $f | **$(ratio "$c" "$f")** |"
  done
  echo "$row"
done

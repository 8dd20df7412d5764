#!/usr/bin/env bash
# One endless stream: `kvcascade generate` with a bounded cache generates N tokens (default one
# million), reporting every R tokens the rate over the last R and the process's peak memory. A
# bounded policy keeps both flat; the table shows it. Prints a markdown table for
# docs/benchmarks.md; the raw report lines go to OUT (default data/million-stream.log).
#
#   bench/million-stream.sh [-m MODEL] [-t THREADS] [-n TOKENS] [-r EVERY] [-c POLICY]
#                           [-s CACHE_SIZE] [-o OUT]
# At 60-170 tokens/s on two cores a million tokens take two to five hours.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
threads=2
tokens=1000000
every=65536
policy=cascade
size=2048
out="$root/data/million-stream.log"
while getopts "m:t:n:r:c:s:o:h" opt; do
  case $opt in
    m) model=$OPTARG ;;
    t) threads=$OPTARG ;;
    n) tokens=$OPTARG ;;
    r) every=$OPTARG ;;
    c) policy=$OPTARG ;;
    s) size=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
kvc="$root/build/kvcascade"
[ -x "$kvc" ] || { echo "million-stream: no $kvc; run scripts/build.sh" >&2; exit 1; }
mkdir -p "$(dirname "$out")"

# Sampled (temperature 0.8, fixed seed), so the text keeps moving instead of settling in a loop;
# --ignore-eos, so a sampled end-of-generation token cannot end it early.
echo "million-stream: $tokens tokens, --cache $policy --cache-size $size, $threads threads; reports in $out" >&2
start=$(date -u +%Y-%m-%dT%H:%MZ)
"$kvc" generate -m "$model" -t "$threads" --cache "$policy" --cache-size "$size" \
  -p "Chapter 1. The long road north." -n "$tokens" --ignore-eos --temp 0.8 --seed 42 \
  --report-every "$every" 2> "$out" > /dev/null
echo "| tokens generated | t/s over the last $every | peak RSS |"
echo "|---:|---:|---:|"
sed -n 's/^\[stream\] \([0-9]*\) tokens generated | \([0-9.]*\) t\/s over the last [0-9]* | peak RSS \(.*\)$/| \1 | \2 | \3 |/p' "$out"
echo
echo "$(grep '^prompt:' "$out" | sed 's/^prompt: [^|]*| //')"
echo "model $(basename "$model"), $threads threads, $(lscpu | sed -n 's/^Model name: *//p' | head -1), started $start"

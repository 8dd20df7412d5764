#!/usr/bin/env bash
# How time scales along a stream, per cache policy (issue: constant memory, flat decode):
#   prefill: tokens/s of strided prefill of N tokens, for N in PREFILL_SIZES
#   decode:  tokens/s of generation at stream depth D (D tokens streamed first), for D in DEPTHS
# Prints markdown tables (and the peak RSS each run reached) for docs/benchmarks.md.
#
#   bench/stream-scaling.sh [-m MODEL] [-t THREADS] [-p "1024 4096 ..."] [-d "1024 8192 ..."]
#                           [-c "full window cascade h2o"] [-s CACHE_SIZE] [-f FULL_MAX]
# The full cache is measured only up to FULL_MAX tokens (default 16384): beyond, its prefill is
# quadratic and its memory grows with the stream, which is the point of the others.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
threads=2
prefill_sizes="1024 4096 16384 65536"
depths="1024 8192 65536"
policies="full window cascade"
size=2048
full_max=16384
while getopts "m:t:p:d:c:s:f:h" opt; do
  case $opt in
    m) model=$OPTARG ;;
    t) threads=$OPTARG ;;
    p) prefill_sizes=$OPTARG ;;
    d) depths=$OPTARG ;;
    c) policies=$OPTARG ;;
    s) size=$OPTARG ;;
    f) full_max=$OPTARG ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
kvc="$root/build/kvcascade"
[ -x "$kvc" ] || { echo "stream-scaling: no $kvc; run scripts/build.sh" >&2; exit 1; }

field() { python3 -c "import json,sys; d=json.load(sys.stdin)[0]; print(d['$1'])"; }
run() {  # policy, extra args... -> "t/s rss_mib"
  local policy=$1; shift
  local ctx=$((full_max + 1024))
  local out
  out=$("$kvc" bench -m "$model" -t "$threads" -r 1 --cache "$policy" --cache-size "$size" -c "$ctx" --json "$@")
  printf '%.1f %d\n' "$(echo "$out" | field avg_ts)" $(( $(echo "$out" | field peak_rss_bytes) / 1048576 ))
}

echo "model: $(basename "$model"), threads $threads, cache size $size (+64 sinks), $(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p')"
echo
# table TITLE LABEL VALUES ARGS: one row per value, one column pair per policy; in ARGS, N stands
# for the row's value.
table() {
  local title=$1 label=$2 values=$3 args=$4
  echo "$title"
  echo
  printf '| %s |' "$label"; for p in $policies; do printf ' %s t/s | %s RSS |' "$p" "$p"; done; echo
  printf '|---:|'; for p in $policies; do printf -- '---:|---:|'; done; echo
  for v in $values; do
    printf '| %s |' "$v"
    for p in $policies; do
      if [ "$p" = full ] && [ "$v" -gt "$full_max" ]; then printf ' - | - |'; continue; fi
      # shellcheck disable=SC2086  # ARGS is a list of flags
      read -r ts rss < <(run "$p" ${args//N/$v})
      printf ' %s | %s |' "$ts" "$rss"
    done
    echo
  done
}

table "Prefill (strided, stride 512): tokens/s and peak RSS (MiB)" tokens "$prefill_sizes" "-p N -n 0"
echo
table "Decode (32 tokens) after D tokens of stream: tokens/s and peak RSS (MiB)" depth "$depths" \
  "-p 0 -n 32 -d N"

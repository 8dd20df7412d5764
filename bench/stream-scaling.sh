#!/usr/bin/env bash
# How time and memory scale along a stream, per cache policy (issue: constant memory, flat decode,
# linear prefill). Each policy is one `kvcascade bench --along DEPTHS -n 32` process: one stream of
# random tokens, whose stretch up to each depth is prefilled (strided) and timed, after which 32
# tokens are generated and timed there. Prints markdown tables for docs/benchmarks.md.
#
#   bench/stream-scaling.sh [-m MODEL] [-t THREADS] [-d "1024 4096 8192 ..."]
#                           [-c "full window cascade h2o"] [-s CACHE_SIZE] [-f FULL_MAX]
# The full cache runs only up to FULL_MAX tokens (default 8192): beyond, its prefill is quadratic
# and its memory grows with the stream, which is the point of the others.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
threads=2
depths="1024 4096 8192 16384 65536 131072 262144"
policies="full window cascade"
size=2048
full_max=8192
while getopts "m:t:d:c:s:f:h" opt; do
  case $opt in
    m) model=$OPTARG ;;
    t) threads=$OPTARG ;;
    d) depths=$OPTARG ;;
    c) policies=$OPTARG ;;
    s) size=$OPTARG ;;
    f) full_max=$OPTARG ;;
    *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
kvc="$root/build/kvcascade"
[ -x "$kvc" ] || { echo "stream-scaling: no $kvc; run scripts/build.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for p in $policies; do
  along=""
  for d in $depths; do
    if [ "$p" = full ] && [ "$d" -gt "$full_max" ]; then continue; fi
    along="${along:+$along,}$d"
  done
  echo "stream-scaling: $p along $along" >&2
  start=$(date +%s)
  "$kvc" bench -m "$model" -t "$threads" --cache "$p" --cache-size "$size" -c "$((full_max + 64))" \
    --along "$along" -n 32 --json > "$work/$p.json"
  echo "stream-scaling: $p took $(( $(date +%s) - start )) s" >&2
done

echo "model: $(basename "$model"), threads $threads, cache size $size (+64 sinks), $(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p')"
echo
python3 - "$work" "$depths" $policies <<'EOF'
import json, sys
work, depths, policies = sys.argv[1], [int(d) for d in sys.argv[2].split()], sys.argv[3:]
runs = {p: json.load(open(f"{work}/{p}.json")) for p in policies}

def at(p, kind, depth):  # the test of `kind` ("pp"/"tg") that ends (pp) or runs (tg) at depth
    for t in runs[p]:
        end = t["n_depth"] + t["n_prompt"] if kind == "pp" else t["n_depth"]
        if t["test"].startswith(kind) and end == depth:
            return t
    return None

print("Prefill (strided, stride 512) of each stretch up to the depth: tokens/s, and seconds the "
      "stream has spent in prefill so far")
print()
print("| depth |" + "".join(f" {p} t/s | {p} s |" for p in policies))
print("|---:|" + "---:|---:|" * len(policies))
spent = {p: 0.0 for p in policies}
for d in depths:
    row = f"| {d} |"
    for p in policies:
        t = at(p, "pp", d)
        if t is None:
            row += " - | - |"
            continue
        spent[p] += t["n_prompt"] / t["avg_ts"]
        row += f" {t['avg_ts']:.1f} | {spent[p]:.1f} |"
    print(row)
print()
print("Decode (32 tokens) at the depth: tokens/s, and the process's peak RSS (MiB)")
print()
print("| depth |" + "".join(f" {p} t/s | {p} RSS |" for p in policies))
print("|---:|" + "---:|---:|" * len(policies))
for d in depths:
    row = f"| {d} |"
    for p in policies:
        t = at(p, "tg", d)
        row += " - | - |" if t is None else f" {t['avg_ts']:.1f} | {t['peak_rss_bytes'] // 1048576} |"
    print(row)
EOF

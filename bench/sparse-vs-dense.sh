#!/usr/bin/env bash
# Dense against sparse attention with the full cache, side by side: for each round, one
# `kvcascade bench --along DEPTHS` stream per attention mode, alternating, so that both see the
# same machine weather. Prints decode (tg) and prefill-stretch (pp) tokens/s per depth, the
# median over rounds, and the sparse/dense ratio.
# Usage: bench/sparse-vs-dense.sh [-m MODEL] [-r ROUNDS] [-d DEPTHS] [-n GEN] [-- extra bench flags]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
rounds=2
depths=1024,2048,4096,8192
gen=32
while [[ $# -gt 0 ]]; do
  case "$1" in
    -m) model=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    -d) depths=$2; shift 2 ;;
    -n) gen=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
last=${depths##*,}
ctx=$((last + gen + 64))
out=$(mktemp -d)
for ((r = 1; r <= rounds; r++)); do
  for a in dense sparse; do
    "$root/build/kvcascade" bench -m "$model" --cache full -c "$ctx" --along "$depths" -n "$gen" \
      --attention "$a" --json --no-roofline "$@" > "$out/$a.$r.json"
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
runs = {a: [json.load(open(f"{out}/{a}.{r}.json")) for r in range(1, rounds + 1)] for a in ("dense", "sparse")}
def table(kind):
    rows = {}
    for a, rs in runs.items():
        for res in rs:
            for t in res:
                if t["test"].startswith(kind):
                    rows.setdefault((t["test"], t["n_depth"]), {}).setdefault(a, []).append(t["avg_ts"])
    print(f"| test | dense t/s | sparse t/s | sparse / dense |")
    print("|---|---:|---:|---:|")
    for (test, depth), v in sorted(rows.items(), key=lambda x: x[0][1]):
        d, s = statistics.median(v["dense"]), statistics.median(v["sparse"])
        print(f"| {test} | {d:.1f} | {s:.1f} | {s / d:.2f}x |")
table("tg"); print(); table("pp")
PY

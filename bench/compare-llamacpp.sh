#!/usr/bin/env bash
# Side-by-side speed of kvcascade and llama.cpp on one model: prompt processing (pp512) and
# generation (tg128), alternating the two engines ROUNDS times so that drift in the machine's
# speed (other load, thermal limits) hits both alike. Prints each round, the medians and the
# ratios kvcascade / llama.cpp, and each engine's tg128 as a share of the roofline: the read
# bandwidth kvcascade bench measures over the bytes it counts for one decode step (the same file's
# weights and KV slots for both engines).
#
#   bench/compare-llamacpp.sh [-m MODEL] [-t THREADS] [-r ROUNDS] [-c POLICY] [-x "LLAMA_BENCH_ARGS"]
#
#   -m  GGUF model (default models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   -t  threads for both engines (default 2)
#   -r  rounds (default 3); each round runs each engine once with -r 1
#   -c  kvcascade cache policy (default full: llama.cpp keeps every key too)
#   -x  extra arguments for llama-bench, e.g. "--repack 0" where ggml's AMX kernels crash
#
# Builds nothing: it needs build/kvcascade (cmake -S . -B build -G Ninja && cmake --build build
# --target kvcascade) and .llamacpp/bin/llama-bench (tools/build-llamacpp.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
threads=2
rounds=3
policy=full
extra=""
while getopts "m:t:r:c:x:h" opt; do
  case $opt in
    m) model=$OPTARG ;;
    t) threads=$OPTARG ;;
    r) rounds=$OPTARG ;;
    c) policy=$OPTARG ;;
    x) extra=$OPTARG ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

kvc="$root/build/kvcascade"
lb="$root/.llamacpp/bin/llama-bench"
[ -x "$kvc" ] || { echo "compare-llamacpp: no $kvc; build it: cmake -S . -B build -G Ninja && cmake --build build --target kvcascade" >&2; exit 1; }
[ -x "$lb" ] || { echo "compare-llamacpp: no $lb; build it: tools/build-llamacpp.sh" >&2; exit 1; }
[ -f "$model" ] || { echo "compare-llamacpp: no model $model (scripts/fetch-model.sh)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for ((i = 1; i <= rounds; i++)); do
  echo "round $i/$rounds: llama.cpp ..." >&2
  # shellcheck disable=SC2086  # $extra is a list of arguments
  "$lb" -m "$model" -t "$threads" -p 512 -n 128 -r 1 -o json $extra > "$tmp/lcp$i.json" 2> "$tmp/lcp$i.err" ||
    { cat "$tmp/lcp$i.err" >&2; echo "compare-llamacpp: llama-bench failed (try -x \"--repack 0\")" >&2; exit 1; }
  echo "round $i/$rounds: kvcascade ..." >&2
  "$kvc" bench -m "$model" -t "$threads" -p 512 -n 128 -r 1 --cache "$policy" --json > "$tmp/kvc$i.json" 2> "$tmp/kvc$i.err" ||
    { cat "$tmp/kvc$i.err" >&2; echo "compare-llamacpp: kvcascade bench failed" >&2; exit 1; }
done

python3 - "$tmp" "$rounds" "$model" "$threads" "$policy" <<'EOF'
import json, os, statistics, sys

tmp, rounds, model, threads, policy = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def results(path):
    """{test name: result object} from llama-bench's or kvcascade's JSON (a list of results,
    or one result object)."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for r in data if isinstance(data, list) else [data]:
        name = r.get("test") or (f"pp{r['n_prompt']}" if r.get("n_gen", 0) == 0 else f"tg{r['n_gen']}")
        out[name] = r
    return out

def tests(path):
    """{'pp512': t/s, 'tg128': t/s}"""
    return {n: float(r["avg_ts"]) for n, r in results(path).items()}

def limit_ts(path):
    """kvcascade's roofline for its tg128: tokens/s at the measured read bandwidth."""
    r = results(path)["tg128"]
    return float(r["limit_ts"]), float(r["read_bandwidth_bytes_per_s"]), \
        int(r["weight_read_bytes"]) + int(r["kv_read_bytes"])

lcp = [tests(os.path.join(tmp, f"lcp{i}.json")) for i in range(1, rounds + 1)]
kvc = [tests(os.path.join(tmp, f"kvc{i}.json")) for i in range(1, rounds + 1)]
names = ["pp512", "tg128"]
print(f"model {os.path.basename(model)}, {threads} threads, kvcascade cache {policy}; tokens/s")
print(f"| {'round':<8} | " + " | ".join(f"{e} {n:>5}" for n in names for e in ("llama.cpp", "kvcascade")) + " |")
print("|" + "|".join(["----------"] + ["-----------------"] * 4) + "|")
def row(label, l, k):
    return f"| {label:<8} | " + " | ".join(f"{v:>15.2f}" for n in names for v in (l[n], k[n])) + " |"
for i in range(rounds):
    print(row(str(i + 1), lcp[i], kvc[i]))
med_l = {n: statistics.median(r[n] for r in lcp) for n in names}
med_k = {n: statistics.median(r[n] for r in kvc) for n in names}
print(row("median", med_l, med_k))
print("ratio kvcascade / llama.cpp (medians): " +
      ", ".join(f"{n} {med_k[n] / med_l[n]:.2f}x" for n in names))
# Each round's share against that round's bandwidth, then the median share.
roof = [limit_ts(os.path.join(tmp, f"kvc{i}.json")) for i in range(1, rounds + 1)]
share_l = statistics.median(lcp[i]["tg128"] / roof[i][0] for i in range(rounds))
share_k = statistics.median(kvc[i]["tg128"] / roof[i][0] for i in range(rounds))
print(f"tg128 share of the limit (median of rounds; read bandwidth median "
      f"{statistics.median(r[1] for r in roof) / 1e9:.1f} GB/s, {roof[0][2] / 1e6:.1f} MB per step "
      f"as kvcascade counts it): llama.cpp {100 * share_l:.0f}%, kvcascade {100 * share_k:.0f}%")
EOF

#!/usr/bin/env bash
# Passkey retrieval (paper protocol unless --extra says otherwise) for a set of cache
# configurations at the same memory, one JSON per (configuration, length, seed) under
#   docs/passkey-runs/<model>/<tag>/NS<sinks>-S<size>/<config>/L<length>-seed<seed>.json
# (kept in the repository: docs/results.md is made from them; --out DIR puts them elsewhere).
# A file that exists is skipped, so an interrupted sweep resumes, and seeds shard a sweep across
# machines: every configuration sees the same prompts for the same (seed, length), so
# tools/passkey-compare.py pairs them (McNemar) whatever ran where.
#
#   scripts/passkey-sweep.sh [--model smollm2|gemma3] [--sinks 64] [--size 512]
#       [--lengths 2048,8192] [--samples 10] [--seeds 1] [--configs "window span7-sum ..."]
#       [--tag paper] [--extra "--needle multikey"] [--threads N] [--out DIR]
# --samples is per depth bin (5 bins). Configurations (S = --size):
#   full full-sparse window oracle oracle1 token4 token8 token7 span4-sum span7-sum span7-mean span7-peak span7-vnorm
#   span7-mean-layer span7-mean-model span7-sum-model span7-mean-model-max span7-sum-model-max
#   span7-mean-model-max-low span7-mean-model-max-lowlast span7-mean-model-max-pool
# where full-sparse is the full cache read by sparse attention (its default budget), oracle1
# pins only the first of the key's six statements, token7/span7 have 7 sub-caches
# of sizes S/4, then six of S/8 (a dense recent level and reach of about 16 S); span units are at most 16 tokens; -layer / -model share each decision
# over a layer's KV heads / every head of every layer (--unit-share), -max by the heads' largest
# attention to a token instead of their sum (--share-reduce max), -low / -lowlast with arrivals
# competing with the lowest-scored units of every closed / the last sub-cache, -pool as -low with a
# last sub-cache that never drops a unit by age (--unit-compete).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
model=smollm2 sinks=64 size=512 lengths=2048,8192 samples=10 seeds=1 tag=paper extra="" threads=""
out=docs/passkey-runs
configs="full window oracle token4 span7-sum"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --sinks) sinks=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --lengths) lengths=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --extra) extra=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "passkey-sweep: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case "$model" in
  smollm2) file=models/SmolLM2-135M-Instruct.Q4_1.gguf; context=8192 ;;
  gemma3) file=models/gemma-3-270m-q4_k_m.gguf; context=32768 ;;
  *) echo "passkey-sweep: --model is smollm2 or gemma3" >&2; exit 2 ;;
esac
[ -f "$file" ] || { echo "passkey-sweep: $file is missing (scripts/fetch-model.sh all)" >&2; exit 1; }
[ -x build/kvcascade ] || bash scripts/build.sh

long="$((size / 4))$(for _ in 1 2 3 4 5 6; do printf ',%d' $((size / 8)); done)"
flags_of() {
  case "$1" in
    full) echo "--cache full" ;;
    full-sparse) echo "--cache full --attention sparse" ;;
    window) echo "--cache window" ;;
    oracle) echo "--cache window --oracle" ;;
    oracle1) echo "--cache window --oracle --oracle-copies 1" ;;
    token4) echo "--cache cascade --cascades 4" ;;
    token8) echo "--cache cascade --cascades 8" ;;
    token7) echo "--cache cascade --cascade-sizes $long" ;;
    span4-sum) echo "--cache cascade --cascades 4 --cascade-unit span" ;;
    span7-sum) echo "--cache cascade --cascade-sizes $long --cascade-unit span" ;;
    span7-mean) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score mean" ;;
    span7-peak) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score peak" ;;
    span7-vnorm) echo "--cache cascade --cascade-sizes $long --cascade-unit span --value-norm" ;;
    span7-mean-layer) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score mean --unit-share layer" ;;
    span7-mean-model) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score mean --unit-share model" ;;
    span7-sum-model) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-share model" ;;
    span7-mean-model-max) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score mean --unit-share model --share-reduce max" ;;
    span7-sum-model-max) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-share model --share-reduce max" ;;
    span7-mean-model-max-low) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score mean --unit-share model --share-reduce max --unit-compete lowest" ;;
    span7-mean-model-max-pool) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score mean --unit-share model --share-reduce max --unit-compete pool" ;;
    span7-mean-model-max-lowlast) echo "--cache cascade --cascade-sizes $long --cascade-unit span --unit-score mean --unit-share model --share-reduce max --unit-compete lowest-last" ;;
    *) echo "passkey-sweep: unknown configuration '$1'" >&2; return 1 ;;
  esac
}

out_root="$out/$model/$tag/NS$sinks-S$size"
IFS=, read -r -a length_list <<< "$lengths"
IFS=, read -r -a seed_list <<< "$seeds"
# Longest first within a seed would finish the costly cells late; run cell by cell instead:
# every configuration at one (seed, length) before the next, so a partial sweep is paired.
for seed in "${seed_list[@]}"; do
  for len in "${length_list[@]}"; do
    for config in $configs; do
      flags=$(flags_of "$config")
      case "$config" in full*) [ "$len" -gt "$context" ] && continue ;; esac
      dir="$out_root/$config"
      file_out="$dir/L$len-seed$seed.json"
      [ -s "$file_out" ] && continue
      mkdir -p "$dir"
      echo "passkey-sweep: $model $config L=$len seed=$seed" >&2
      # shellcheck disable=SC2086
      if ./build/kvcascade passkey -m "$file" --sinks "$sinks" --cache-size "$size" \
          --lengths "$len" --samples "$samples" --seed "$seed" ${threads:+-t $threads} \
          $flags $extra --json > "$file_out.part"; then
        mv "$file_out.part" "$file_out"
      else
        rc=$?
        rm -f "$file_out.part"
        [ "$rc" = 130 ] && exit 130
        echo "passkey-sweep: $config L=$len seed=$seed failed (exit $rc)" >&2
      fi
    done
  done
done

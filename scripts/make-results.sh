#!/usr/bin/env bash
# Runs the evaluations behind docs/results.md and draws its plots.
#
#   scripts/make-results.sh [--quick] [--models smollm2,gemma3] [--sizes 512,1024]
#                           [--policies window,cascade4,...] [--samples N] [-t THREADS]
#                           [--bin build/kvcascade] [--no-run]
#
# Every configuration writes one result file under data/results/<set>/ (set = full or quick) and
# is skipped when that file exists, so an interrupted run resumes where it stopped; delete a file
# to redo it. Files are written to *.tmp first and renamed when complete.
#
# Full set (hours on two cores), per model: NS = 64 sinks and S = 512 and 1024 slots for window,
# cascade C = 4, cascade C = 8, cascade C = 4 without score selection (the ablation) and h2o
# (all NS + S slots, the same memory); the full cache where the length fits the model's trained
# context. --sizes and --policies run a subset (full is a policy too).
#   - perplexity: KJV, the first 65536 tokens (full: the first <context> tokens), 4096-token buckets
#   - passkey: lengths 1x 2x 4x 8x 16x S, 5 depth bins, --samples per bin (default 4), the
#     landmark protocol of these tables (scripts/passkey-sweep.sh runs the paper's)
#   - census: the slots the window and the cascades keep after the perplexity stream
# Quick set (about 15 minutes on two cores): SmolLM2 only, S = 256, perplexity over 3072
# tokens, passkey at 1x and 4x S with 1 sample per depth bin.
#
# Then tools/plot-results.py writes data/results/<set>/tables.md and the plot data, and gnuplot
# draws docs/<set>-passkey.png, docs/<set>-ppl.png and docs/<set>-ages.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

set_name=full
models=smollm2,gemma3
samples=4
threads=$(nproc)
sizes_arg=""
policies_arg=""
bin=build/kvcascade
run=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) set_name=quick; models=smollm2; samples=1 ;;
    --models) models=$2; shift ;;
    --samples) samples=$2; shift ;;
    --sizes) sizes_arg=$2; shift ;;
    --policies) policies_arg=$2; shift ;;
    -t|--threads) threads=$2; shift ;;
    --bin) bin=$2; shift ;;
    --no-run) run=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "make-results: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

out=data/results/$set_name
mkdir -p "$out" docs
if [ "$run" = 1 ]; then
  [ -x "$bin" ] || { echo "make-results: no binary at $bin (scripts/build.sh, or --bin)" >&2; exit 1; }
  scripts/prepare-text.sh
fi

model_file() {
  case "$1" in
    smollm2) echo models/SmolLM2-135M-Instruct.Q4_1.gguf ;;
    gemma3) echo models/gemma-3-270m-q4_k_m.gguf ;;
    *) echo "make-results: unknown model '$1'" >&2; exit 2 ;;
  esac
}
model_context() {
  case "$1" in smollm2) echo 8192 ;; gemma3) echo 32768 ;; esac
}

if [ "$set_name" = quick ]; then
  sizes="256"; ppl_tokens=3072; bucket=512; multiples="1 4"
else
  sizes="512 1024"; ppl_tokens=65536; bucket=4096; multiples="1 2 4 8 16"
fi
sinks=64
policies="full window cascade4 cascade8 cascade4new h2o"
[ -z "$sizes_arg" ] || sizes=${sizes_arg//,/ }
[ -z "$policies_arg" ] || policies=${policies_arg//,/ }
wanted() { case " $policies " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# Runs "$@" into $file unless it exists; logs to $file.log.
produce() {
  local file=$1; shift
  if [ -s "$file" ]; then echo "have  $file"; return 0; fi
  echo "run   $file: $*"
  local start=$SECONDS
  if "$@" > "$file.tmp" 2> "$file.log"; then
    mv "$file.tmp" "$file"
    echo "      done in $((SECONDS - start)) s"
  else
    echo "      FAILED (exit $?), see $file.log" >&2
    rm -f "$file.tmp"
    return 1
  fi
}

# policy tag -> kvcascade cache flags
cache_flags() {
  local tag=$1 size=$2
  case "$tag" in
    full) echo "--cache full" ;;
    window) echo "--cache window --sinks $sinks --cache-size $size" ;;
    cascade4) echo "--cache cascade --cascades 4 --sinks $sinks --cache-size $size" ;;
    cascade8) echo "--cache cascade --cascades 8 --sinks $sinks --cache-size $size" ;;
    cascade4new) echo "--cache cascade --cascades 4 --cascade-select newest --sinks $sinks --cache-size $size" ;;
    h2o) echo "--cache h2o --sinks $sinks --cache-size $size" ;;
  esac
}

failed=0
if [ "$run" = 1 ]; then
  for m in ${models//,/ }; do
    mf=$(model_file "$m")
    ctx=$(model_context "$m")
    [ -f "$mf" ] || { echo "make-results: $mf missing (scripts/fetch-model.sh)" >&2; exit 1; }
    common=(-m "$mf" -t "$threads")
    # Perplexity: full over what fits the trained context, the bounded policies over the rest.
    full_tokens=$(( ppl_tokens < ctx ? ppl_tokens : ctx ))
    wanted full && produce "$out/ppl_${m}_full.json" "$bin" perplexity "${common[@]}" --cache full -f data/kjv.txt \
      --max-tokens "$full_tokens" --bucket "$bucket" --json || failed=1
    for s in $sizes; do
      for tag in window cascade4 cascade8 cascade4new h2o; do
        wanted "$tag" || continue
        slots=()
        case "$tag" in window|cascade4|cascade8) slots=(--slots-out "$out/slots_${m}_${tag}_S${s}.txt") ;; esac
        # shellcheck disable=SC2046
        produce "$out/ppl_${m}_${tag}_S${s}.json" "$bin" perplexity "${common[@]}" $(cache_flags "$tag" "$s") \
          -f data/kjv.txt --max-tokens "$ppl_tokens" --bucket "$bucket" --json "${slots[@]}" || failed=1
      done
    done
    # Passkey at multiples of S; the full cache only where the longest prompt fits the context.
    for s in $sizes; do
      lengths=""
      for k in $multiples; do lengths="$lengths${lengths:+,}$((k * s))"; done
      for tag in full window cascade4 cascade8 cascade4new h2o; do
        wanted "$tag" || continue
        use_lengths=$lengths
        if [ "$tag" = full ]; then
          use_lengths=""
          for k in $multiples; do
            [ $((k * s + 8)) -le "$ctx" ] && use_lengths="$use_lengths${use_lengths:+,}$((k * s))"
          done
          [ -n "$use_lengths" ] || continue
        fi
        # shellcheck disable=SC2046
        produce "$out/pk_${m}_${tag}_S${s}.json" "$bin" passkey "${common[@]}" $(cache_flags "$tag" "$s") \
          --lengths "$use_lengths" --samples "$samples" --seed 1 --protocol landmark --max-new 8 \
          --json || failed=1
      done
    done
  done
fi

[ "$run" = 1 ] && cat > "$out/machine.txt" <<EOF
date: $(date -u +%Y-%m-%dT%H:%MZ)
commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores
threads: $threads
set: $set_name
EOF

python3 tools/plot-results.py "$out" "$set_name"
for gp in tools/plot-passkey.gp tools/plot-ppl.gp tools/plot-ages.gp; do
  gnuplot -e "dir='$out'; png='docs/$set_name-$(basename "$gp" .gp | sed 's/^plot-//').png'" "$gp"
done
echo "tables: $out/tables.md; plots: docs/$set_name-{passkey,ppl,ages}.png"
exit $failed

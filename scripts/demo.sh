#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, fetch the default model, build, and
# stream text from it with the Cascading KV cache. Extra arguments go to `kvcascade generate`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
bash scripts/fetch-model.sh smollm2
bash scripts/build.sh
exec ./build/kvcascade generate --cache cascade --sinks 64 --cache-size 256 --cascades 4 \
  -p "Once upon a time, in a village at the edge of a great forest," -n 1024 "$@"

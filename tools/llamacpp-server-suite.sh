#!/usr/bin/env bash
# Runs llama.cpp's own server test suite (tools/server/tests of the llama-cpp-python sdist that
# tools/build-llamacpp.sh uses, downloaded here at run time, never copied into this repository)
# against `kvcascade serve`, in the suite's DEBUG_EXTERNAL mode: the tests talk to a running
# server instead of starting llama-server. Prints per test file how many passed, failed and were
# skipped, then every failure with the first line of its reason; the junit XML is kept.
#
#   tools/llamacpp-server-suite.sh [TEST_FILE...]   (default: the files below)
# The security tests run against a server started with the suite's API key, the others against
# one without a key. Results depend on the model: the suite's expectations were written for the
# stories260K test model, this runs SmolLM2 (models/, scripts/fetch-model.sh).
set -euo pipefail
VERSION=0.3.36
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.llamacpp"
out="$root/build/llamacpp-suite"
mkdir -p "$dest/src" "$out"
rm -f "$out"/*.xml
cd "$dest/src"
if [ ! -d "llama_cpp_python-$VERSION" ]; then
  python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d .
  tar xzf "llama_cpp_python-$VERSION.tar.gz"
fi
tests="$dest/src/llama_cpp_python-$VERSION/vendor/llama.cpp/tools/server/tests"
venv="$dest/suite-venv"
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$tests/requirements.txt"
fi
[ -x "$root/build/kvcascade" ] || bash "$root/scripts/build.sh"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test_basic.py test_chat_completion.py test_completion.py
  test_tokenize.py test_stream.py test_metrics.py test_ctx_shift.py test_security.py)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server=""
start() {  # extra flags of kvcascade serve
  "$root/build/kvcascade" serve -m "$root/models/SmolLM2-135M-Instruct.Q4_1.gguf" --port "$port" \
    -np 4 --temp 0 "$@" > "$out/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "llamacpp-server-suite: kvcascade serve did not start (see $out/server.log)" >&2
  exit 1
}
stop() { [ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""; }; }
trap stop EXIT

run() {  # name, then pytest arguments
  local name=$1
  shift
  (cd "$tests" && DEBUG_EXTERNAL=1 PORT="$port" timeout 1800 "$venv/bin/python" -m pytest -q \
     -p no:cacheprovider --junitxml="$out/$name.xml" "$@" > "$out/$name.txt" 2>&1) || true
}

plain=() secure=()
for f in "${files[@]}"; do
  if [ "$f" = test_security.py ]; then secure+=("unit/$f"); else plain+=("unit/$f"); fi
done
if [ ${#plain[@]} -gt 0 ]; then start; run plain "${plain[@]}"; stop; fi
if [ ${#secure[@]} -gt 0 ]; then start --api-key sk-this-is-the-secret-key --cors-origins "*"; run security "${secure[@]}"; stop; fi

python3 - "$out" <<'EOF'
import collections, sys, xml.etree.ElementTree as ET
from pathlib import Path
out = Path(sys.argv[1])
per_file = collections.defaultdict(lambda: [0, 0, 0])
failures = []
for xml in sorted(out.glob("*.xml")):
    for case in ET.parse(xml).iter("testcase"):
        f = case.get("classname", "").split(".")[-1] + ".py"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if case.find("skipped") is not None:
            per_file[f][2] += 1
        elif bad is not None:
            per_file[f][1] += 1
            reason = (bad.get("message") or "").strip().splitlines()
            failures.append((f, case.get("name"), reason[0][:140] if reason else ""))
        else:
            per_file[f][0] += 1
print("| test file | passed | failed | skipped |")
print("|---|---:|---:|---:|")
for f, (p, x, s) in sorted(per_file.items()):
    print(f"| {f} | {p} | {x} | {s} |")
t = [sum(v[i] for v in per_file.values()) for i in range(3)]
print(f"| all | {t[0]} | {t[1]} | {t[2]} |")
print()
for f, name, reason in failures:
    print(f"FAILED {f}::{name}: {reason}")
EOF

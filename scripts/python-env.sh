#!/usr/bin/env bash
# The Python the server tests need, in a private venv (.venv/, ignored by git): pytest and the
# openai client from PyPI, pinned. Safe to run again: pip skips what is already there.
# Prints the venv's python on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$root/tests/server/requirements.txt" >&2
echo "$venv/bin/python"

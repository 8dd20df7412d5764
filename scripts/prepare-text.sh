#!/usr/bin/env bash
# Writes the King James Bible (public domain, Debian's bible-kjv-text) as plain UTF-8 text to
# data/kjv.txt, for streaming perplexity and passkey filler. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/data/kjv.txt"
[ -s "$out" ] && exit 0
command -v bible >/dev/null || { echo "prepare-text: 'bible' not found; run scripts/install-deps.sh" >&2; exit 1; }
mkdir -p "$root/data"
# Verse numbers and chapter headings out, one paragraph per chapter.
bible 'Gen1:1-Rev22:21' | sed -e 's/^ *[0-9]\+ //' | awk '
  /^$/ { next }
  /^[1-3]? ?[A-Z][a-z]+( of [A-Z][a-z]+)? [0-9]+$/ { if (p != "") print p "\n"; p = ""; next }
  { p = (p == "" ? $0 : p " " $0) }
  END { if (p != "") print p }' > "$out.tmp"
mv "$out.tmp" "$out"

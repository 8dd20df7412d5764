#!/usr/bin/env python3
"""Session save and restore through `kvcascade serve --session-dir` (issue 11's target: save +
restore under 50 ms at the default cache size). For each cache size: starts a server, has one
chat turn under an id, then times POST /v1/sessions/{id}/save (the server's own figure: encode,
checksums, write, fsync, rename) and /restore (the client's round trip: read, checksums, load in
place), `--repeat` times, and prints the file size and the medians.

    bench/session-save.py [--sizes 64,512,2048] [--repeat 9] [--threads 2] [--dir /tmp/...]
Stdlib only; the model is SmolLM2 (models/, scripts/fetch-model.sh).
"""
import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def post(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-Session-Id": "bench"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.loads(r.read())
    return time.perf_counter() - t, out


def run(size, repeat, threads, directory):
    cmd = [str(ROOT / "build/kvcascade"), "serve", "-m", str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"),
           "--port", "0", "-t", str(threads), "--cache-size", str(size), "--session-dir", directory,
           "--session-autosave", "off", "--temp", "0"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            port = int(m.group(1)) if m else None
        if port is None:
            raise RuntimeError("server did not start: " + " ".join(cmd))
        url = f"http://127.0.0.1:{port}"
        post(url, "/v1/chat/completions",
             {"messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 16})
        saves, restores, nbytes = [], [], 0
        for _ in range(repeat + 1):  # the first save faults its buffer in: not counted
            _, s = post(url, "/v1/sessions/bench/save", {})
            r, _ = post(url, "/v1/sessions/bench/restore", {})
            saves.append(s["seconds"])
            restores.append(r)
            nbytes = s["bytes"]
        saves, restores = saves[1:], restores[1:]
        return nbytes, statistics.median(saves), statistics.median(restores)
    finally:
        p.terminate()
        p.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64,512,2048")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    print("| --cache-size | file bytes | save (median) | restore (median) | save + restore |")
    print("|---:|---:|---:|---:|---:|")
    for size in [int(s) for s in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory(dir=a.dir) as d:
            nbytes, save, restore = run(size, a.repeat, a.threads, d)
        print(f"| {size} | {nbytes:,} | {save * 1000:.1f} ms | {restore * 1000:.1f} ms | "
              f"{(save + restore) * 1000:.1f} ms |", flush=True)


if __name__ == "__main__":
    main()

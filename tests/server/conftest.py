"""Starts `kvcascade serve` on a free loopback port for the server tests.

The binary is build/kvcascade (or $KVC_BIN), the model SmolLM2-135M-Instruct Q4_1 (or $KVC_MODEL).
Every server is stopped at the end of the module that started it; every wait is bounded.
"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("KVC_BIN", str(ROOT / "build" / "kvcascade"))
MODEL = os.environ.get("KVC_MODEL", str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
THREADS = os.environ.get("KVC_THREADS", "2")


class Server:
    """One `kvcascade serve` process; `args` are extra flags."""

    def __init__(self, *args, start_timeout=60):
        self.cmd = [BIN, "serve", "-m", MODEL, "--port", "0", "-t", THREADS, *args]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT)
        deadline = time.monotonic() + start_timeout
        self.port = None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"server did not start: {' '.join(self.cmd)}")
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, api_key="none", v1=True, **kw):
        base = self.url + ("/v1" if v1 else "")
        return openai.OpenAI(base_url=base, api_key=api_key, max_retries=0, timeout=120, **kw)

    def raw(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, body bytes) of one plain HTTP request; body is bytes or JSON-able."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def metric(self, name):
        _, _, text = self.raw("GET", "/metrics")
        m = re.search(rf"^kvcascade:{re.escape(name)} (\S+)$", text.decode(), re.M)
        return float(m.group(1)) if m else None

    def rss_bytes(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server():
    s = Server("--cache-size", "64", "--sinks", "16", "-np", "4", "--temp", "0")
    yield s
    assert s.stop() == 0


def chat(client, messages, **kw):
    """One synchronous chat completion at temperature 0."""
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model="any", messages=messages, **kw)

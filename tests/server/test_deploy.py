"""docs/deploy.md on loopback: two `kvcascade serve` replicas over one --session-dir behind
Debian's nginx, routed by X-Session-Id with a consistent hash. The replica that holds a
conversation is stopped; the conversation goes on through the other, which loads the session's
file, with the replies of a conversation that never moved and nothing fed again."""
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import openai
import pytest

from conftest import Server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CACHE = ["--cache-size", "64", "--sinks", "16", "--temp", "0"]
QUESTIONS = ["Name a colour.", "And a fruit?", "Now an animal.", "Which is biggest?"]
SID = "deploy-conversation-1"

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX),
                                reason="nginx is not installed (scripts/install-deps.sh)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, prefix, upstream_ports):
        self.port = free_port()
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;"
                            for p in upstream_ports)
        conf = prefix / "nginx.conf"
        conf.write_text(f"""
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  upstream kvcascade {{
    hash $http_x_session_id consistent;
{servers}
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://kvcascade;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
      proxy_next_upstream error timeout;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("nginx failed: " + self.proc.stderr.read())
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stderr.close()


def converse(client, history, questions):
    """Each question with the whole history resent; (reply, upstream, usage) per turn."""
    out = []
    for q in questions:
        history.append({"role": "user", "content": q})
        raw = client.chat.completions.with_raw_response.create(
            model="any", messages=history, max_tokens=24, temperature=0)
        r = raw.parse()
        text = r.choices[0].message.content
        history.append({"role": "assistant", "content": text})
        out.append((text, raw.headers.get("x-upstream", ""), r.usage))
    return out


def test_a_conversation_survives_its_replica(tmp_path):
    solo = Server(*CACHE)
    try:
        reference = [t for t, _, _ in converse(solo.client(default_headers={"X-Session-Id": SID}),
                                               [], QUESTIONS)]
    finally:
        assert solo.stop() == 0

    sessions = tmp_path / "sessions"
    replicas = [Server(*CACHE, "--session-dir", str(sessions)) for _ in range(2)]
    proxy = Nginx(tmp_path, [r.port for r in replicas])
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{proxy.port}/v1", api_key="none",
                               max_retries=0, timeout=120,
                               default_headers={"X-Session-Id": SID})
        history = []
        before = converse(client, history, QUESTIONS[:2])
        holders = {u for _, u, _ in before}
        assert len(holders) == 1, holders  # the hash keeps a conversation on one replica
        holder = holders.pop()
        index = [f"127.0.0.1:{r.port}" for r in replicas].index(holder)
        assert replicas[index].stop() == 0  # SIGTERM; its autosave already holds turn 2

        after = converse(client, history, QUESTIONS[2:])
        other = f"127.0.0.1:{replicas[1 - index].port}"
        assert all(u.split(", ")[-1] == other for _, u, _ in after), after
        assert [t for t, _, _ in before + after] == reference
        first = after[0][2]
        assert first.prompt_tokens_details.cached_tokens == before[-1][2].total_tokens
        assert first.model_extra["kvcascade"]["refed_tokens"] == 0
    finally:
        proxy.stop()
        for r in replicas:
            r.stop()

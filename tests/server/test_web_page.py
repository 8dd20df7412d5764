"""The chat page at GET /, driven in headless Chromium over the DevTools protocol: it loads, a
typed message streams a reply into the page, the usage figures appear, the conversation stays in
one session, and with --api-key the key field is what lets it through.

The protocol runs over --remote-debugging-pipe (fds 3 and 4, NUL-terminated JSON), so no
websocket client is needed. Every wait has a deadline. Set KVC_SCREENSHOT=FILE to keep a PNG.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import Server

CHROMIUM = shutil.which(os.environ.get("KVC_CHROMIUM", "chromium"))
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/install-deps.sh installs Debian's)")

MAX_TOKENS = 24


class Browser:
    """One headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, url, timeout=30):
        self.profile = tempfile.mkdtemp(prefix="kvc-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # The sandbox needs namespaces that containers and CI runners often refuse.
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                "--window-size=900,760", url]
        # Chromium reads commands on fd 3 and writes replies on fd 4; bash puts them there (dash takes
        # one-digit fds only).
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w}', *args],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.session = None
        try:
            self._attach(timeout)
        except BaseException:
            self.close()
            raise

    def _attach(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pages = [t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            if pages:
                break
            time.sleep(0.1)
        else:
            raise TimeoutError("chromium opened no page")
        self.session = self.call("Target.attachToTarget", targetId=pages[0]["targetId"],
                                 flatten=True)["sessionId"]

    def call(self, method, timeout=20, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:  # events and other replies are not ours
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {method}")
            ready, _, _ = select.select([self.from_child], [], [], left)
            if ready:
                chunk = os.read(self.from_child, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buf += chunk

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what):
        """Polls a JS expression until it is truthy; its value, or TimeoutError saying what."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"{what} within {timeout} s")

    def wait_loaded(self):
        # Until the navigation commits, the page is about:blank, with no #session in it.
        self.wait_for("document.readyState === 'complete' && "
                      "(document.getElementById('session') || {}).title", 20, "the page to load")

    def type_and_send(self, text):
        """Types as a user does (focus, insert text, press Enter), then waits for the turn to end."""
        turns = int(self.js("document.body.dataset.turns || 0"))
        self.js("document.getElementById('msg').focus()")
        self.call("Input.insertText", text=text)
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, **({"text": "\r"} if kind == "keyDown" else {}))
        self.wait_for(f"Number(document.body.dataset.turns || 0) > {turns}", 40, "the turn to end")

    def state(self):
        """What the page shows: every bubble and every figure."""
        return self.js("""({
          bubbles: Array.from(document.querySelectorAll('#log .msg'), (d) => ({
            cls: d.className, text: d.textContent, deltas: Number(d.dataset.deltas || 0),
            done: d.dataset.done === '1'})),
          stats: Object.fromEntries(['session', 'cache-bytes', 'live-tokens', 'evicted-tokens',
                                     'stream-tokens', 'cached-tokens'].map((id) => [id,
                                     document.getElementById(id).textContent])),
          session: document.getElementById('session').title,
          imgs: document.querySelectorAll('#log img').length,
        })""")

    def screenshot(self, path):
        png = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.to_child)
        os.close(self.from_child)
        shutil.rmtree(self.profile, ignore_errors=True)


def number(text):
    return int(text.replace(",", ""))


@pytest.fixture
def browser_at():
    opened = []

    def open_(url):
        opened.append(Browser(url))
        return opened[-1]

    yield open_
    for b in opened:
        b.close()


def test_page_is_public_static_and_locked_down():
    s = Server("--cache-size", "64", "--sinks", "16", "--api-key", "sk-page")
    try:
        status, headers, body = s.raw("GET", "/")
        assert status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "connect-src 'self'" in headers["Content-Security-Policy"]
        page = body.decode()
        assert page.startswith("<!DOCTYPE html>") and "/v1/chat/completions" in page
        assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
        assert "innerHTML" not in page
    finally:
        assert s.stop() == 0


@needs_chromium
def test_chat_streams_and_shows_the_cache(server, browser_at, tmp_path):
    b = browser_at(server.url + "/")
    b.wait_loaded()
    b.js(f"document.getElementById('max-tokens').value = '{MAX_TOKENS}'")

    # Markup in a message must stay text: a live <img onerror> would run script.
    first = "Hi! <img src=x onerror=\"document.title='pwned'\"> What is the capital of France?"
    b.type_and_send(first)
    s1 = b.state()
    assert [x["cls"] for x in s1["bubbles"]] == ["msg user", "msg assistant"], s1
    assert s1["bubbles"][0]["text"] == first and s1["imgs"] == 0
    reply = s1["bubbles"][1]
    assert reply["done"] and reply["text"].strip()
    assert reply["deltas"] > 1  # it came in pieces, each shown as it came
    # The same text, and the same cache size, as a plain streamed request at temperature 0 in a
    # fresh session gets.
    chunks = list(server.client().chat.completions.create(
        model="any", messages=[{"role": "user", "content": first}], max_tokens=MAX_TOKENS,
        temperature=0, stream=True, stream_options={"include_usage": True}))
    assert reply["text"] == "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert number(s1["stats"]["cache-bytes"]) == chunks[-1].usage.kvcascade["cache_bytes"] > 0
    live, evicted = number(s1["stats"]["live-tokens"]), number(s1["stats"]["evicted-tokens"])
    stream1 = number(s1["stats"]["stream-tokens"])
    assert live > 0 and live + evicted == stream1
    assert number(s1["stats"]["cached-tokens"]) == 0  # a new session
    assert len(s1["session"]) == 32

    # The second turn joins the session: all the first turn's tokens are reused, none re-fed,
    # and the 80-slot cache has by now evicted some.
    b.type_and_send("And of Italy?")
    s2 = b.state()
    assert [x["cls"] for x in s2["bubbles"]] == ["msg user", "msg assistant"] * 2, s2
    assert s2["bubbles"][3]["done"] and s2["bubbles"][3]["text"].strip()
    assert s2["session"] == s1["session"]
    assert number(s2["stats"]["cached-tokens"]) == stream1
    stream2 = number(s2["stats"]["stream-tokens"])
    assert stream2 > stream1
    live2, evicted2 = number(s2["stats"]["live-tokens"]), number(s2["stats"]["evicted-tokens"])
    assert live2 + evicted2 == stream2 and evicted2 > 0
    assert b.js("document.title") == "kvcascade chat"
    b.screenshot(os.environ.get("KVC_SCREENSHOT") or tmp_path / "page.png")


@needs_chromium
def test_api_key_field(browser_at):
    s = Server("--cache-size", "64", "--sinks", "16", "--temp", "0", "--api-key", "sk-page")
    try:
        b = browser_at(s.url + "/")
        b.wait_loaded()
        b.js(f"document.getElementById('max-tokens').value = '{MAX_TOKENS}'")
        b.type_and_send("Hello")
        bubbles = b.state()["bubbles"]
        assert bubbles[-1]["cls"] == "msg error" and "401" in bubbles[-1]["text"], bubbles
        b.js("document.getElementById('key').value = 'sk-page'")
        b.type_and_send("Hello")
        st = b.state()
        assert st["bubbles"][-1]["cls"] == "msg assistant" and st["bubbles"][-1]["text"].strip(), st
        assert number(st["stats"]["live-tokens"]) > 0
    finally:
        assert s.stop() == 0

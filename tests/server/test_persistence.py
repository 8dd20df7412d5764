"""serve --session-dir: a restart loses nothing. A conversation interrupted by SIGTERM, or by
SIGKILL after its autosave, continues after the restart exactly as an uninterrupted one does
(temperature 0, the client resending its whole history, as every OpenAI client does);
save/restore/fork/delete over /v1/sessions; a session dropped beyond --max-sessions comes back;
a file of another configuration or model, or a corrupt one, gets 409 and is left as it is."""
import json
import os
import signal
from pathlib import Path

import pytest

from conftest import ROOT, Server, chat

CACHE = ["--cache-size", "64", "--sinks", "16", "--temp", "0"]
QUESTIONS = ["Name a colour.", "And a fruit?", "Now an animal.", "Which is biggest?",
             "Say it in French.", "Thank you!"]
MAX_TOKENS = 24


def converse(client, history, questions):
    """Asks each question resending the whole history; returns (replies, usages)."""
    replies, usages = [], []
    for q in questions:
        history.append({"role": "user", "content": q})
        r = chat(client, history, max_tokens=MAX_TOKENS)
        text = r.choices[0].message.content
        history.append({"role": "assistant", "content": text})
        replies.append(text)
        usages.append(r.usage)
    return replies, usages


@pytest.fixture(scope="module")
def reference():
    """The six replies of a conversation that never stops (no session directory)."""
    s = Server(*CACHE)
    try:
        replies, usages = converse(s.client(), [], QUESTIONS)
    finally:
        assert s.stop() == 0
    # Well past the 80 cache slots: the restart has to bring back an evicting cascade.
    assert usages[-1].model_extra["kvcascade"]["evicted_tokens"] > 0
    return replies


def session_files(d):
    return sorted(p for p in Path(d).iterdir() if p.suffix == ".kvcs")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_restart_continues_bit_identically(tmp_path, reference, how):
    first = Server(*CACHE, "--session-dir", str(tmp_path))
    history = []
    try:
        replies, usages = converse(first.client(), history, QUESTIONS[:3])
    finally:
        if how == "SIGKILL":  # after the third turn's autosave, nothing at exit
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=30)
            first.proc.stderr.close()
        else:
            assert first.stop() == 0
    assert replies == reference[:3]
    files = session_files(tmp_path)
    assert len(files) == 1, files
    size = files[0].stat().st_size

    second = Server(*CACHE, "--session-dir", str(tmp_path))
    try:
        replies, usages = converse(second.client(), history, QUESTIONS[3:])
        assert second.metric("session_saves_total") == 3
    finally:
        assert second.stop() == 0
    assert replies == reference[3:]
    # Found by its chain, nothing fed again: each turn feeds only the new message.
    for u, before in zip(usages, [None] + usages[:-1]):
        kv = u.model_extra["kvcascade"]
        assert kv["refed_tokens"] == 0, kv
        assert u.prompt_tokens_details.cached_tokens > 0
        if before is not None:
            assert u.prompt_tokens_details.cached_tokens == before.total_tokens
    # One file, the same size however long the conversation ran: the caches as allocated, and
    # the text of the last exchange only (a few hundred bytes that vary with it).
    files = session_files(tmp_path)
    assert len(files) == 1 and abs(files[0].stat().st_size - size) < 2048


def call(server, method, path, body=None, headers=None):
    status, _, raw = server.raw(method, path, {} if body is None and method == "POST" else body,
                                headers=headers)
    return status, json.loads(raw)


def test_save_restore_fork_delete(tmp_path):
    s = Server(*CACHE, "--session-dir", str(tmp_path), "--session-autosave", "off")
    try:
        sid = "persist-1"
        client = s.client(default_headers={"X-Session-Id": sid})
        first = chat(client, [{"role": "user", "content": QUESTIONS[0]}], max_tokens=MAX_TOKENS)
        assert not (tmp_path / f"{sid}.kvcs").exists()  # autosave off
        status, saved = call(s, "POST", f"/v1/sessions/{sid}/save")
        assert status == 200 and saved["object"] == "session.saved", saved
        assert saved["bytes"] == (tmp_path / f"{sid}.kvcs").stat().st_size
        status, forked = call(s, "POST", f"/v1/sessions/{sid}/fork", {"id": "persist-2"})
        assert status == 201 and forked["id"] == "persist-2", forked

        second = [{"role": "user", "content": QUESTIONS[1]}]
        a = chat(client, second, max_tokens=MAX_TOKENS)
        # Back to the saved state: the same question gets the same reply.
        status, restored = call(s, "POST", f"/v1/sessions/{sid}/restore")
        assert status == 200, restored
        assert restored["stream_tokens"] == first.usage.model_extra["kvcascade"]["stream_tokens"]
        b = chat(client, second, max_tokens=MAX_TOKENS)
        assert b.choices[0].message.content == a.choices[0].message.content
        assert b.usage.model_extra["kvcascade"]["stream_tokens"] == a.usage.model_extra["kvcascade"]["stream_tokens"]
        # The fork continues from the same point on its own.
        fork_client = s.client(default_headers={"X-Session-Id": "persist-2"})
        c = chat(fork_client, second, max_tokens=MAX_TOKENS)
        assert c.choices[0].message.content == a.choices[0].message.content

        status, err = call(s, "POST", f"/v1/sessions/{sid}/fork", {"id": "persist-2"})
        assert status == 409 and "already exists" in err["error"]["message"]
        status, err = call(s, "POST", "/v1/sessions/persist-2/restore")
        assert status == 404 and "no saved file" in err["error"]["message"], err
        status, err = call(s, "POST", "/v1/sessions/nobody/save")
        assert status == 404, err

        status, _ = call(s, "DELETE", f"/v1/sessions/{sid}")
        assert status == 200 and not (tmp_path / f"{sid}.kvcs").exists()
    finally:
        assert s.stop() == 0
    # SIGTERM saved the one session left, the fork.
    assert [p.name for p in session_files(tmp_path)] == ["persist-2.kvcs"]


def test_save_needs_a_session_dir():
    s = Server(*CACHE)
    try:
        client = s.client(default_headers={"X-Session-Id": "nodir"})
        chat(client, [{"role": "user", "content": "Hi"}], max_tokens=2)
        status, err = call(s, "POST", "/v1/sessions/nodir/save")
        assert status == 400 and "--session-dir" in err["error"]["message"], err
    finally:
        assert s.stop() == 0


def test_a_dropped_session_comes_back(tmp_path):
    s = Server(*CACHE, "--session-dir", str(tmp_path), "--max-sessions", "1", "-np", "1")
    try:
        a = s.client(default_headers={"X-Session-Id": "lru-a"})
        b = s.client(default_headers={"X-Session-Id": "lru-b"})
        r1 = chat(a, [{"role": "user", "content": QUESTIONS[0]}], max_tokens=8)
        chat(b, [{"role": "user", "content": QUESTIONS[0]}], max_tokens=8)  # drops lru-a
        assert s.metric("sessions_dropped_total") >= 1
        assert s.metric("sessions_resident") == 1
        r2 = chat(a, [{"role": "user", "content": QUESTIONS[1]}], max_tokens=8)
        assert r2.usage.prompt_tokens_details.cached_tokens == r1.usage.total_tokens
    finally:
        assert s.stop() == 0


def first_file_of_a_conversation(tmp_path):
    s = Server(*CACHE, "--session-dir", str(tmp_path))
    try:
        chat(s.client(default_headers={"X-Session-Id": "keep"}),
             [{"role": "user", "content": "Hi"}], max_tokens=4)
    finally:
        assert s.stop() == 0
    return tmp_path / "keep.kvcs"


def refused(server_args, path, needle):
    before = path.read_bytes()
    s = Server(*server_args, "--session-dir", str(path.parent))
    try:
        client = s.client(default_headers={"X-Session-Id": "keep"})
        with pytest.raises(Exception) as e:
            chat(client, [{"role": "user", "content": "Again"}], max_tokens=4)
        assert getattr(e.value, "status_code", None) == 409, e.value
        assert needle in str(e.value), e.value
        status, err = call(s, "GET", "/v1/sessions/keep")  # the same answer on the session route
        assert status == 409 and needle in err["error"]["message"]
        # Other sessions are served as ever.
        chat(s.client(default_headers={"X-Session-Id": "fresh"}),
             [{"role": "user", "content": "Hi"}], max_tokens=2)
    finally:
        assert s.stop() == 0
    assert path.read_bytes() == before  # left alone


def test_other_configuration_is_refused(tmp_path):
    path = first_file_of_a_conversation(tmp_path)
    refused(["--cache-size", "32", "--sinks", "16", "--temp", "0"], path,
            "saved with another cache configuration (saved with size=64, this one runs size=32)")


def test_corrupt_or_truncated_file_is_refused(tmp_path):
    path = first_file_of_a_conversation(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    refused(CACHE, path, "fails its checksum (the file is corrupt)")
    path.write_bytes(bytes(data[: len(data) // 3]))
    refused(CACHE, path, "truncated")
    path.write_bytes(b"not a session at all")
    refused(CACHE, path, "not a kvcascade session file")


GEMMA = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"


@pytest.mark.skipif(not GEMMA.exists(), reason="Gemma 3 is not fetched (scripts/fetch-model.sh all)")
def test_another_models_file_is_refused(tmp_path, monkeypatch):
    path = first_file_of_a_conversation(tmp_path)
    monkeypatch.setattr("conftest.MODEL", str(GEMMA))
    refused(CACHE, path, "saved by another model file")

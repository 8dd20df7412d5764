"""/v1/sessions: a key lists, creates, reads and deletes its own conversations; another key's
sessions do not exist for it (404); a created session is the one a chat under its id goes on;
bad ids and bodies get a 4xx that says what is wrong."""
import json

import pytest

from conftest import Server, chat

KEY, OTHER = "sk-sessions-1", "sk-sessions-2"


@pytest.fixture(scope="module")
def server():
    s = Server("--cache-size", "64", "--sinks", "16", "--api-key", f"{KEY},{OTHER}", "--temp", "0")
    yield s
    assert s.stop() == 0


def call(server, method, path, body=None, key=KEY):
    status, _, raw = server.raw(method, path, body, headers={"Authorization": f"Bearer {key}"})
    return status, json.loads(raw)


def test_create_chat_read_delete(server):
    status, created = call(server, "POST", "/v1/sessions", {})
    assert status == 201, created
    sid = created["id"]
    assert len(sid) == 32 and all(c in "0123456789abcdef" for c in sid), sid  # 128 random bits
    assert created["stream_tokens"] == 0 and created["object"] == "session"

    client = server.client(api_key=KEY, default_headers={"X-Session-Id": sid})
    r = chat(client, [{"role": "user", "content": "Say hi."}], max_tokens=4)
    assert r.usage.model_extra["kvcascade"]["session_id"] == sid

    status, got = call(server, "GET", f"/v1/sessions/{sid}")
    assert status == 200, got
    assert got["chat"] is True and got["busy"] is False
    assert got["stream_tokens"] == r.usage.model_extra["kvcascade"]["stream_tokens"] > 0
    assert got["live_cache_tokens"] + got["evicted_tokens"] == got["stream_tokens"]
    assert got["cache_bytes"] > 0

    status, listed = call(server, "GET", "/sessions")  # the routes also answer without /v1
    assert status == 200 and sid in [s["id"] for s in listed["data"]]

    status, deleted = call(server, "DELETE", f"/v1/sessions/{sid}")
    assert status == 200 and deleted == {"id": sid, "object": "session.deleted", "deleted": True}
    status, gone = call(server, "GET", f"/v1/sessions/{sid}")
    assert status == 404 and gone["error"]["type"] == "not_found_error"
    status, _ = call(server, "DELETE", f"/v1/sessions/{sid}")
    assert status == 404


def test_another_key_sees_nothing(server):
    status, created = call(server, "POST", "/v1/sessions", {"id": "only-mine"})
    assert status == 201 and created["id"] == "only-mine"
    for method in ("GET", "DELETE"):
        status, err = call(server, method, "/v1/sessions/only-mine", key=OTHER)
        assert status == 404, (method, err)
    status, listed = call(server, "GET", "/v1/sessions", key=OTHER)
    assert "only-mine" not in [s["id"] for s in listed["data"]]
    status, _ = call(server, "GET", "/v1/sessions/only-mine")
    assert status == 200, "the other key's DELETE must not have touched it"
    status, err = call(server, "GET", "/v1/sessions", key="sk-wrong")
    assert status == 401


def test_bad_requests(server):
    status, err = call(server, "POST", "/v1/sessions", {"id": "only-mine-2"})
    assert status == 201
    status, err = call(server, "POST", "/v1/sessions", {"id": "only-mine-2"})
    assert status == 409 and "already exists" in err["error"]["message"]
    for body, param in (({"id": "../etc/passwd"}, "id"), ({"id": "x" * 65}, "id"), ({"id": 7}, "id"),
                        ({"name": "x"}, "name")):
        status, err = call(server, "POST", "/v1/sessions", body)
        assert status == 400 and err["error"]["param"] == param, (body, err)
    status, err = call(server, "POST", "/v1/sessions", b"[1, 2]")
    assert status == 400, err
    status, err = call(server, "GET", "/v1/sessions/a%2F..%2Fb")
    assert status == 404, err

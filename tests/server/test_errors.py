"""Bad input gets a 4xx in OpenAI's error shape, with the status the openai client turns into
the right exception class, and the server keeps serving."""
import json

import openai
import pytest

from conftest import Server, chat

KEY = "sk-test-key"
OTHER_KEY = "sk-other-key"


@pytest.fixture(scope="module")
def guarded():
    s = Server("--cache-size", "64", "--sinks", "16", "--api-key", f"{KEY},{OTHER_KEY}",
               "--max-body", "65536", "--n-predict-max", "512")
    yield s
    assert s.stop() == 0


def error_of(server, body, headers=None, path="/v1/chat/completions"):
    status, _, raw = server.raw("POST", path, body, {"Authorization": f"Bearer {KEY}", **(headers or {})})
    error = json.loads(raw)["error"]
    assert set(error) >= {"message", "type", "code", "param"}
    assert error["code"] == status
    return status, error


HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("body, param", [
    (b'{"messages": [', ""),                                     # not JSON
    (b'{"messages": [{"role": "user", "content": "\xff"}]}', ""),  # not UTF-8
    (b'[1, 2]', ""),                                             # not an object
    ({"messages": "hi"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": HI, "temperature": "hot"}, "temperature"),
    ({"messages": HI, "max_tokens": 10 ** 12}, "max_tokens"),
    ({"messages": HI, "max_tokens": 2.5}, "max_tokens"),
    ({"messages": HI, "n": 2}, "n"),
    ({"messages": HI, "top_p": 0}, "top_p"),
    ({"messages": HI, "stop": [1]}, "stop"),
    ({"messages": HI, "stream": "yes"}, "stream"),
    ({"messages": HI, "session_id": "../etc/passwd"}, "session_id"),
])
def test_bad_request_is_400_naming_the_field(guarded, body, param):
    status, error = error_of(guarded, body)
    assert status == 400 and error["type"] == "invalid_request_error"
    assert error["param"] == (param or None)
    assert error["message"]


def test_invalid_utf8_says_so(guarded):
    _, error = error_of(guarded, b'{"messages": [{"role": "user", "content": "\xc3\x28"}]}')
    assert "UTF-8" in error["message"]


def test_path_like_session_header_is_400(guarded):
    status, error = error_of(guarded, {"messages": HI}, {"X-Session-Id": "a/../b"})
    assert status == 400 and error["param"] == "X-Session-Id"


def test_huge_body_is_413(guarded):
    body = {"messages": [{"role": "user", "content": "x" * 100_000}]}
    status, error = error_of(guarded, body)
    assert status == 413 and "max-body" in error["message"]


def test_form_encoded_body_over_8k_says_what_to_send(guarded):
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 10_000}]}).encode()
    status, error = error_of(guarded, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and "application/json" in error["message"]


def test_client_exception_classes(guarded):
    client = guarded.client(api_key=KEY)
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, HI, max_tokens=10 ** 9)
    assert e.value.status_code == 400 and "max_tokens" in e.value.message
    with pytest.raises(openai.BadRequestError):
        chat(client, [{"role": "user", "content": "hi"}], temperature="hot")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")  # no such route
    with pytest.raises(openai.AuthenticationError):
        chat(guarded.client(api_key="sk-wrong"), HI, max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        guarded.client(api_key="").models.list()
    assert chat(client, HI, max_tokens=2).choices[0].message.content is not None  # still serving


def test_keys_by_header_and_health_is_public(guarded):
    assert guarded.raw("GET", "/health")[0] == 200
    assert guarded.raw("GET", "/v1/models")[0] == 401
    assert guarded.raw("GET", "/v1/models", headers={"X-Api-Key": KEY})[0] == 200
    assert guarded.raw("GET", "/v1/models", headers={"Authorization": f"Bearer {KEY}x"})[0] == 401


def test_another_keys_session_is_404(guarded):
    mine = guarded.client(api_key=KEY, default_headers={"X-Session-Id": "owned-by-key-1"})
    assert chat(mine, HI, max_tokens=2).usage.model_extra["kvcascade"]["session_id"] == "owned-by-key-1"
    theirs = guarded.client(api_key=OTHER_KEY, default_headers={"X-Session-Id": "owned-by-key-1"})
    with pytest.raises(openai.NotFoundError):
        chat(theirs, HI, max_tokens=2)


def test_full_cache_context_exceeded_is_400():
    s = Server("--cache", "full", "-c", "64")
    try:
        with pytest.raises(openai.BadRequestError) as e:
            chat(s.client(), [{"role": "user", "content": "word " * 100}], max_tokens=4)
        assert e.value.body["type"] == "exceed_context_size_error"
        assert e.value.body["n_ctx"] == 64 and e.value.body["n_prompt_tokens"] > 64
        # Generation that fills the context stops with "length", like llama-server.
        r = chat(s.client(), [{"role": "user", "content": "Tell me a long story."}], max_tokens=200)
        assert r.choices[0].finish_reason == "length"
        assert r.usage.model_extra["kvcascade"]["stream_tokens"] == 64
    finally:
        assert s.stop() == 0

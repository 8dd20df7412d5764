"""The OpenAI protocol as the openai client and plain HTTP see it: chat and completions, sync and
streamed, the usage chunk, the base URL with and without /v1, and the extra routes."""
import json

import pytest

from conftest import chat


def sse_events(body):
    """The data: payloads of an SSE body, in order."""
    return [line[len("data: "):] for line in body.decode().split("\n") if line.startswith("data: ")]


@pytest.mark.parametrize("v1", [True, False])
def test_chat_sync(server, v1):
    r = chat(server.client(v1=v1), [{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 8
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_equals_sync(server):
    messages = [{"role": "user", "content": "Name a fruit."}]
    whole = chat(server.client(), messages, max_tokens=12).choices[0].message.content
    chunks = list(server.client().chat.completions.create(
        model="any", messages=messages, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")


def test_stream_framing_ends_with_done(server):
    status, headers, body = server.raw("POST", "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": True})
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert len(headers["X-Session-Id"]) == 32  # a fresh 128-bit id, in hex
    events = sse_events(body)
    assert events[-1] == "[DONE]"
    objects = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in o for o in objects)  # no include_usage: no usage chunk
    assert objects[-1]["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.parametrize("v1", [True, False])
def test_completions(server, v1):
    c = server.client(v1=v1)
    r = c.completions.create(model="any", prompt="The capital of France is", max_tokens=6,
                             temperature=0)
    assert r.object == "text_completion" and r.choices[0].text
    streamed = list(c.completions.create(model="any", prompt="The capital of France is",
                                         max_tokens=6, temperature=0, stream=True))
    assert "".join(s.choices[0].text for s in streamed if s.choices) == r.choices[0].text


def test_stop_string_ends_the_reply_before_it(server):
    messages = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    full = chat(server.client(), messages, max_tokens=40).choices[0].message.content
    assert "5" in full, full
    cut = chat(server.client(), messages, max_tokens=40, stop=["5"])
    assert cut.choices[0].message.content == full[:full.index("5")]
    assert cut.choices[0].finish_reason == "stop"


def test_models_health_props_metrics(server):
    models = server.client().models.list()
    assert [m.id for m in models.data] == ["SmolLM2-135M-Instruct.Q4_1"]
    assert server.raw("GET", "/health")[0] == 200
    status, _, body = server.raw("GET", "/props")
    props = json.loads(body)
    assert status == 200 and props["total_slots"] == 4 and props["cache"]["size"] == 64
    assert server.metric("tokens_predicted_total") > 0
    status, headers, body = server.raw("GET", "/metrics")
    assert "# TYPE kvcascade:time_to_first_token_seconds histogram" in body.decode()


def test_tokenize_detokenize_round_trip(server):
    text = "Hello, world! Ünïcode ✓"
    status, _, body = server.raw("POST", "/tokenize", {"content": text})
    tokens = json.loads(body)["tokens"]
    assert status == 200 and all(isinstance(t, int) for t in tokens)
    status, _, body = server.raw("POST", "/detokenize", {"tokens": tokens})
    assert json.loads(body)["content"] == text
    _, _, body = server.raw("POST", "/tokenize", {"content": "Hi", "with_pieces": True})
    assert "".join(p["piece"] for p in json.loads(body)["tokens"]) == "Hi"

"""A conversation that never ends: a client that resends its whole history every turn, as every
OpenAI client does, for 300 turns through a cache of 16 sinks + 64 slots (over 20x the cache
by the end). No turn fails for length; each turn's cached_tokens is the whole previous stream,
so only the new turn is fed; the server's memory stays flat. The same conversation driven by
X-Session-Id with only the new messages gives the same text."""
import json
import statistics
import time

import pytest

from conftest import Server, chat

TURNS = 300
CACHE_SLOTS = 16 + 64
MAX_TOKENS = 8
TIME_LIMIT_S = 400


def user_message(i):
    return f"Turn {i}: give one word for the number {i}."


def tokens_of(server, text):
    _, _, body = server.raw("POST", "/tokenize", {"content": text})
    return len(json.loads(body)["tokens"])


@pytest.fixture(scope="module")
def endless():
    s = Server("--cache-size", "64", "--sinks", "16", "--cascades", "4", "-np", "2",
               "--temp", "0", "--max-sessions", "4")
    yield s
    assert s.stop() == 0


def test_endless_conversation_resending_the_history(endless):
    client = endless.client()
    messages = [{"role": "system", "content": "You are terse."}]
    start = time.monotonic()
    previous_stream = 0
    session_id = None
    rss = {}
    fed_excess = []
    seconds = []  # per turn: the request's wall time (prefill of the new turn + 8 tokens)
    for i in range(1, TURNS + 1):
        assert time.monotonic() - start < TIME_LIMIT_S, f"too slow: turn {i}"
        messages.append({"role": "user", "content": user_message(i)})
        t0 = time.monotonic()
        r = chat(client, messages, max_tokens=MAX_TOKENS)
        seconds.append(time.monotonic() - t0)
        kv = r.usage.model_extra["kvcascade"]
        reply = r.choices[0].message.content
        if session_id is None:
            session_id = kv["session_id"]
        assert kv["session_id"] == session_id, f"turn {i} was not matched to its session"
        cached = r.usage.prompt_tokens_details.cached_tokens
        assert cached == previous_stream, f"turn {i}: cached {cached}, previous stream {previous_stream}"
        assert kv["refed_tokens"] == 0
        # What is fed is the new message and the template around it, never the history.
        fed_excess.append(kv["fed_tokens"] - tokens_of(endless, user_message(i)))
        assert kv["live_cache_tokens"] <= CACHE_SLOTS
        assert kv["stream_tokens"] == kv["live_cache_tokens"] + kv["evicted_tokens"]
        previous_stream = kv["stream_tokens"]
        messages.append({"role": "assistant", "content": reply})
        if i in (50, TURNS):
            rss[i] = endless.rss_bytes()
    assert previous_stream > 20 * CACHE_SLOTS, previous_stream
    # Turn 1 also feeds the system prompt; afterwards the template adds the same few tokens.
    assert max(fed_excess[1:]) <= 12 and max(fed_excess[1:]) - min(fed_excess[1:]) <= 2, fed_excess
    growth = rss[TURNS] - rss[50]
    print(f"\nendless: {TURNS} turns, {previous_stream} stream tokens through {CACHE_SLOTS} slots; "
          f"RSS {rss[50] / 2**20:.1f} MiB at turn 50, {rss[TURNS] / 2**20:.1f} MiB at turn {TURNS} "
          f"({growth / 2**10:+.0f} KiB); median turn {statistics.median(seconds[1:101]) * 1e3:.0f} ms "
          f"over turns 2-101, {statistics.median(seconds[-100:]) * 1e3:.0f} ms over the last 100; "
          f"{time.monotonic() - start:.0f} s")
    assert abs(growth) <= 0.02 * rss[50], rss


def test_session_id_with_only_new_messages_gives_the_same_text(endless):
    turns = 20
    full = endless.client()
    delta = endless.client(default_headers={"X-Session-Id": "delta-conversation"})
    history = []
    for i in range(1, turns + 1):
        history.append({"role": "user", "content": user_message(i)})
        a = chat(full, history, max_tokens=MAX_TOKENS)
        b = chat(delta, [history[-1]], max_tokens=MAX_TOKENS)
        assert b.usage.model_extra["kvcascade"]["session_id"] == "delta-conversation"
        assert b.choices[0].message.content == a.choices[0].message.content, f"turn {i}"
        assert b.usage.prompt_tokens_details.cached_tokens == a.usage.prompt_tokens_details.cached_tokens
        history.append({"role": "assistant", "content": a.choices[0].message.content})


def test_edited_history_is_refed_and_reported(endless):
    client = endless.client(default_headers={"X-Session-Id": "edited"})
    history = [{"role": "user", "content": "Name a colour."}]
    first = chat(client, history, max_tokens=4)
    history += [{"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "Another one."}]
    assert chat(client, history, max_tokens=4).usage.prompt_tokens_details.cached_tokens > 0
    edited = [history[0], {"role": "assistant", "content": "Blue, surely."},
              {"role": "user", "content": "Another one."}]
    r = chat(client, edited, max_tokens=4)
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.model_extra["kvcascade"]["refed_tokens"] == r.usage.prompt_tokens


def test_a_new_message_repeating_the_first_is_a_new_turn(endless):
    # Under X-Session-Id with only the new messages, saying the first thing again continues the
    # conversation: it is not an edited history.
    client = endless.client(default_headers={"X-Session-Id": "repeats-itself"})
    chat(client, [{"role": "user", "content": "Hello"}], max_tokens=4)
    second = chat(client, [{"role": "user", "content": "Tell me a joke."}], max_tokens=4)
    third = chat(client, [{"role": "user", "content": "Hello"}], max_tokens=4)
    kv = third.usage.model_extra["kvcascade"]
    assert kv["refed_tokens"] == 0
    assert third.usage.prompt_tokens_details.cached_tokens > second.usage.prompt_tokens_details.cached_tokens > 0

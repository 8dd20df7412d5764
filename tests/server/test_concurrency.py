"""Streams at once: 4 concurrent streams each give what they give alone (temperature 0), a full
queue answers 503 with Retry-After, and a client that closes its stream frees its slot."""
import http.client
import json
import threading
import time

import pytest

from conftest import Server

PROMPTS = ["Name three animals.", "What is 2 + 2?", "Describe the sea.", "Say something kind."]


def streamed_text(client, prompt, max_tokens=24):
    chunks = client.chat.completions.create(
        model="any", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
        temperature=0, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.fixture(scope="module")
def four():
    s = Server("--cache-size", "64", "--sinks", "16", "-np", "4")
    yield s
    assert s.stop() == 0


def test_four_streams_at_once_equal_their_solo_runs(four):
    solo = [streamed_text(four.client(), p) for p in PROMPTS]
    together = [None] * len(PROMPTS)

    def run(i):
        together[i] = streamed_text(four.client(), PROMPTS[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(PROMPTS))]
    steps_before = four.metric("n_decode_total")
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert together == solo
    # The engine did step several streams together, not one after another.
    assert four.metric("n_busy_slots_per_decode") > 1.0
    assert four.metric("n_decode_total") > steps_before


def open_stream(server, body, wait_for_headers=True):
    """An SSE request left open: (connection, response or None). Headers come once the engine
    has started the request, so a queued one is left unread."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/completions", json.dumps({**body, "stream": True}),
                 {"Content-Type": "application/json"})
    return conn, conn.getresponse() if wait_for_headers else None


COUNTING = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "temperature": 0, "max_tokens": 300}


@pytest.fixture(scope="module")
def one_slot():
    s = Server("--cache-size", "64", "--sinks", "16", "-np", "1", "--max-queue", "1")
    yield s
    assert s.stop() == 0


def test_counting_prompt_runs_to_its_limit(one_slot):
    # The prompt the next tests cancel does not end by itself before max_tokens.
    r = one_slot.client().completions.create(model="any", **COUNTING)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 300


def test_full_queue_is_503_with_retry_after(one_slot):
    running = open_stream(one_slot, COUNTING)
    running[1].readline()  # generating
    waiting = open_stream(one_slot, COUNTING, wait_for_headers=False)  # queued behind it
    deadline = time.monotonic() + 10
    while one_slot.metric("requests_deferred") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    status, headers, body = one_slot.raw("POST", "/v1/completions", COUNTING)
    assert status == 503 and headers["Retry-After"] == "1"
    assert json.loads(body)["error"]["type"] == "unavailable_error"
    for conn, _ in (running, waiting):
        conn.close()


def test_closed_stream_frees_its_slot(one_slot):
    deadline = time.monotonic() + 15
    while one_slot.metric("requests_processing") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    predicted = one_slot.metric("tokens_predicted_total")
    conn, resp = open_stream(one_slot, COUNTING)
    for _ in range(6):
        resp.readline()
    conn.close()
    closed = time.monotonic()
    while one_slot.metric("requests_processing") > 0 and time.monotonic() - closed < 5:
        time.sleep(0.02)
    freed_after = time.monotonic() - closed
    assert one_slot.metric("requests_processing") == 0
    assert freed_after < 1.5, freed_after
    # Far fewer than the 300 tokens it asked for: generation stopped when the client left.
    assert one_slot.metric("tokens_predicted_total") - predicted < 150

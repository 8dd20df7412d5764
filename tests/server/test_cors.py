"""CORS is off unless --cors-origins names the origins whose pages may call the API: then a
preflight from one of them is answered (without a key, as browsers send none) with the methods
and the very headers it asked for, and every response to it carries Access-Control-Allow-Origin;
any other origin gets no CORS header, so its browser keeps the response from it."""
import pytest

from conftest import Server

APP = "http://app.example:3000"
KEY = "sk-cors"


@pytest.fixture(scope="module")
def server():
    s = Server("--cache-size", "64", "--sinks", "16", "--api-key", KEY, "--cors-origins", APP)
    yield s
    assert s.stop() == 0


def preflight(server, origin):
    return server.raw("OPTIONS", "/v1/chat/completions", None, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-session-id"})


def test_preflight_from_an_allowed_origin(server):
    status, headers, _ = preflight(server, APP)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE, OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == "authorization,content-type,x-session-id"


def test_responses_to_an_allowed_origin_say_so(server):
    status, headers, _ = server.raw("GET", "/v1/models", None,
                                    headers={"Origin": APP, "Authorization": f"Bearer {KEY}"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == APP
    assert "X-Session-Id" in headers["Access-Control-Expose-Headers"]
    status, headers, _ = server.raw("GET", "/v1/models", None, headers={"Origin": APP})
    assert status == 401 and headers["Access-Control-Allow-Origin"] == APP  # the page can read why


def test_other_origins_get_no_cors_headers(server):
    status, headers, _ = preflight(server, "http://evil.example")
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = server.raw("GET", "/health", None, headers={"Origin": "http://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


def test_cors_is_off_by_default():
    s = Server("--cache-size", "64", "--sinks", "16")
    try:
        status, headers, _ = preflight(s, APP)
        assert status == 404 and "Access-Control-Allow-Origin" not in headers
        status, headers, _ = s.raw("GET", "/health", None, headers={"Origin": APP})
        assert status == 200 and "Access-Control-Allow-Origin" not in headers
    finally:
        assert s.stop() == 0

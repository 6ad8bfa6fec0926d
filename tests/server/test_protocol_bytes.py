"""The HTTP protocol, byte for byte, over both drivers (one parametrised suite).

Each request is fed to an ``HttpProtocol`` on a fake transport whole, one byte
at a time, and followed by trailing data, and the bytes written back are
compared with the expected response (the ``date`` value normalised). The same
constants hold for both backends, so passing on both means identical output.
"""

from __future__ import annotations

import re

import pytest

from llmstruct.server.app import encode_header

DATE = re.compile(rb"date: [^\r]+\r\n")
FEEDS = ("whole", "bytewise")

SIMPLE_GET_REQUEST = b"GET /health HTTP/1.1\r\nHost: example.org\r\n\r\n"
SIMPLE_GET_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-type: application/json\r\n"
    b'content-length: 15\r\n\r\n{"status":"ok"}'
)
SIMPLE_HEAD_REQUEST = b"HEAD /health HTTP/1.1\r\nHost: example.org\r\n\r\n"
SIMPLE_HEAD_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
)
POST_REQUEST = b"POST /echo HTTP/1.1\r\nHost: example.org\r\nContent-Length: 11\r\n\r\nhello world"
CHUNKED_POST_REQUEST = (
    b"POST /echo HTTP/1.1\r\nHost: example.org\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
)
ECHO_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"x-length: 11\r\ncontent-length: 11\r\n\r\nhello world"
)
HTTP10_GET_REQUEST = b"GET /health HTTP/1.0\r\n\r\n"
HTTP10_GET_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-type: application/json\r\n"
    b'content-length: 15\r\nconnection: close\r\n\r\n{"status":"ok"}'
)
STREAM_REQUEST = b"GET /stream?n=3&size=2 HTTP/1.1\r\nHost: example.org\r\n\r\n"
STREAM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n2\r\n00\r\n2\r\n11\r\n2\r\n22\r\n0\r\n\r\n"
)


def normal(output: bytes) -> bytes:
    return DATE.sub(b"date: D\r\n", output)


@pytest.fixture(params=FEEDS)
def bytewise(request: pytest.FixtureRequest) -> bool:
    return request.param == "bytewise"


@pytest.mark.parametrize(
    "request_bytes, response_bytes",
    [
        (SIMPLE_GET_REQUEST, SIMPLE_GET_RESPONSE),
        (SIMPLE_HEAD_REQUEST, SIMPLE_HEAD_RESPONSE),
        (POST_REQUEST, ECHO_RESPONSE),
        (CHUNKED_POST_REQUEST, ECHO_RESPONSE),
        (STREAM_REQUEST, STREAM_RESPONSE),
    ],
    ids=["get", "head", "post", "chunked-post", "streaming"],
)
def test_answers_request_fed_whole_or_bytewise_and_keeps_connection_open(
    harness, bytewise, request_bytes, response_bytes
):
    h = harness().feed(request_bytes, bytewise=bytewise)
    assert normal(h.output) == response_bytes
    assert not h.transport.closed and not h.transport.eof_written


@pytest.mark.parametrize(
    "request_bytes, response_bytes",
    [(SIMPLE_GET_REQUEST, SIMPLE_GET_RESPONSE), (POST_REQUEST, ECHO_RESPONSE)],
    ids=["get", "post"],
)
def test_trailing_partial_request_is_kept_for_later(
    harness, bytewise, request_bytes, response_bytes
):
    h = harness().feed(request_bytes + SIMPLE_GET_REQUEST[:20], bytewise=bytewise)
    assert normal(h.output) == response_bytes
    h.feed(SIMPLE_GET_REQUEST[20:], bytewise=bytewise)
    assert normal(h.output) == response_bytes + SIMPLE_GET_RESPONSE


def test_limits_beyond_any_real_size_serve_as_no_limit(harness):
    # A configured size above what a C size can hold (the compiled driver counts in
    # Py_ssize_t) must not stop the server from serving anything.
    huge = 10**19
    h = harness(max_head_bytes=huge, max_body_bytes=huge, max_keepalive_requests=huge)
    h = h.feed(POST_REQUEST)
    assert normal(h.output) == ECHO_RESPONSE


def test_trailing_garbage_is_refused_after_the_valid_request(harness, bytewise):
    h = harness().feed(SIMPLE_GET_REQUEST + b"NOT HTTP AT ALL\r\n\r\n", bytewise=bytewise)
    first, second = h.responses()
    assert first.status == 200
    assert second.status == 400 and second.header("connection") == "close"
    assert h.transport.eof_written


def test_pipelined_requests_are_answered_in_order(harness, bytewise):
    requests = POST_REQUEST + SIMPLE_GET_REQUEST + STREAM_REQUEST + SIMPLE_HEAD_REQUEST
    h = harness().feed(requests, bytewise=bytewise)
    assert normal(h.output) == (
        ECHO_RESPONSE + SIMPLE_GET_RESPONSE + STREAM_RESPONSE + SIMPLE_HEAD_RESPONSE
    )


def test_http10_request_gets_a_response_and_close(harness, bytewise):
    h = harness().feed(HTTP10_GET_REQUEST, bytewise=bytewise)
    assert normal(h.output) == HTTP10_GET_RESPONSE
    assert h.transport.eof_written


def test_http10_keep_alive_is_honoured(harness):
    h = harness().feed(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"connection: keep-alive\r\n" in h.output
    assert not h.transport.eof_written


def test_http10_streaming_response_is_unframed_and_ends_with_close(harness):
    h = harness().feed(b"GET /stream?n=2&size=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert normal(h.output) == (
        b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\n\r\n000111"
    )
    assert h.transport.eof_written


def test_connection_close_request_is_the_last(harness, bytewise):
    request = b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    h = harness().feed(request + SIMPLE_GET_REQUEST, bytewise=bytewise)
    assert h.output.count(b"HTTP/1.1 200 OK") == 1
    assert b"connection: close\r\n" in h.output
    assert h.transport.eof_written


def test_leading_empty_lines_before_a_request_are_skipped(harness):
    h = harness().feed(b"\r\n\r\n" + SIMPLE_GET_REQUEST)
    assert normal(h.output) == SIMPLE_GET_RESPONSE


def test_unknown_path_is_404_and_wrong_method_405_with_allow(harness):
    h = harness().feed(
        b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\nDELETE /health HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    missing, wrong = h.responses()
    assert missing.status == 404 and missing.body == b'{"detail":"Not Found"}'
    assert wrong.status == 405 and wrong.header("allow") == "GET, HEAD"


def test_path_parameters_reach_the_handler(harness):
    h = harness().feed(b"GET /items/2 HTTP/1.1\r\nHost: a\r\n\r\n")
    (response,) = h.responses()
    assert response.body == b'{"id":"2","name":"two"}'


def test_expect_100_continue_is_answered_when_the_handler_reads(harness):
    h = harness().feed(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
    )
    assert h.output == b"HTTP/1.1 100 Continue\r\n\r\n"
    h.feed(b"hello world")
    assert normal(h.output) == b"HTTP/1.1 100 Continue\r\n\r\n" + ECHO_RESPONSE


def test_handler_error_is_a_500_json_response(harness, caplog):
    h = harness().feed(b"GET /fail HTTP/1.1\r\nHost: a\r\n\r\n")
    (response,) = h.responses()
    assert response.status == 500
    assert response.body == b'{"detail":"Internal Server Error"}'
    assert "boom" in caplog.text


def test_early_response_to_a_request_with_unread_body_closes(harness, bytewise):
    h = harness().feed(
        b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234", bytewise=bytewise
    )
    (response,) = h.responses()
    assert response.status == 200 and response.header("connection") == "close"
    assert h.transport.eof_written


@pytest.mark.parametrize(
    "name, value",
    [
        ("x-a", "b\r\nset-cookie: evil"),
        ("x-a", "nul\x00"),
        ("bad name", "v"),
        ("content-length", "1"),
    ],
)
def test_response_headers_cannot_split_or_reframe_a_response(name, value):
    with pytest.raises(ValueError):
        encode_header(name, value)


def test_no_content_responses_carry_no_framing_headers(harness):
    from llmstruct.server.app import Response, StreamingResponse

    h = harness()
    h.state.app.add_route("/empty", lambda request: Response(b"", 204))
    h.state.app.add_route("/empty-stream", lambda request: StreamingResponse(iter(()), 204))
    h.feed(b"GET /empty HTTP/1.1\r\nHost: a\r\n\r\nGET /empty-stream HTTP/1.1\r\nHost: a\r\n\r\n")
    assert normal(h.output) == b"HTTP/1.1 204 No Content\r\ndate: D\r\n\r\n" * 2

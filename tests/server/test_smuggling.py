"""Malformed and ambiguous requests: the same answer from both backends, then a close.

Every case runs over a real loopback socket against a started server, on each
backend, and again fed one byte at a time through the protocol. The expected
status and detail are the same constants for both backends.
"""

from __future__ import annotations

import json

import pytest

from tests.server.helpers import BACKENDS, Harness, exchange

H = b"Host: a\r\n"

# name -> (request bytes, status, detail)
CASES = {
    "cl-with-te": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n0\r\n\r\n",
        400, "Content-Length with Transfer-Encoding",
    ),
    "te-with-cl": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"
        b"\r\n0\r\n\r\n",
        400, "Content-Length with Transfer-Encoding",
    ),
    "cl-with-te-gzip": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n",
        400, "Content-Length with Transfer-Encoding",
    ),
    "differing-duplicate-cl": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        400, "Multiple Content-Length headers",
    ),
    "identical-duplicate-cl": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        400, "Multiple Content-Length headers",
    ),
    "cl-list": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1, 1\r\n\r\nx",
        400, "Invalid Content-Length",
    ),
    "cl-signed": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: +1\r\n\r\nx",
        400, "Invalid Content-Length",
    ),
    "cl-overflow": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
        400, "Invalid Content-Length",
    ),
    "te-gzip": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n",
        501, "Only Transfer-Encoding: chunked is supported",
    ),
    "te-gzip-chunked": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501, "Only Transfer-Encoding: chunked is supported",
    ),
    "te-chunked-twice": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501, "Only Transfer-Encoding: chunked is supported",
    ),
    "te-empty": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: \r\n\r\n",
        501, "Only Transfer-Encoding: chunked is supported",
    ),
    "te-on-http10": (
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400, "Transfer-Encoding in an HTTP/1.0 request",
    ),
    "obs-fold": (b"GET /health HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400, None),
    "obs-fold-tab": (b"GET /health HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n", 400, None),
    "space-before-colon": (b"GET /health HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n", 400, None),
    "nul-in-value": (b"GET /health HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", 400, None),
    "cr-in-value": (b"GET /health HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n", 400, None),
    "del-in-value": (b"GET /health HTTP/1.1\r\n" + H + b"X-A: b\x7fc\r\n\r\n", 400, None),
    "ctl-in-name": (b"GET /health HTTP/1.1\r\n" + H + b"X\x01A: b\r\n\r\n", 400, None),
    "bare-lf": (b"GET /health HTTP/1.1\nHost: a\n\n", 400, None),
    "missing-host": (b"GET /health HTTP/1.1\r\n\r\n", 400, "Missing Host header"),
    "duplicate-host": (
        b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Multiple Host headers",
    ),
    "http2-version": (b"GET /health HTTP/2.0\r\n" + H + b"\r\n", 505, "HTTP version not supported"),
    "space-in-target": (b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "bad-method": (b"G@T /health HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "bad-chunk-size": (
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n",
        400, "Invalid request body framing",
    ),
    "continuation-first": (b"GET /health HTTP/1.1\r\n Host: a\r\n\r\n", 400, None),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_over_a_socket_then_closed(serve, case):
    data, status, detail = CASES[case]
    server = serve()
    (response,), closed = exchange(server.port, data)
    assert response.status == status, response
    if detail is not None:
        assert json.loads(response.body) == {"detail": detail}
    assert response.header("connection") == "close"
    assert closed


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_when_fed_one_byte_at_a_time(harness, case):
    data, status, detail = CASES[case]
    h = harness().feed(data, bytewise=True)
    (response,) = h.responses()
    assert response.status == status, response
    if detail is not None:
        assert json.loads(response.body) == {"detail": detail}
    assert h.transport.eof_written


def test_every_case_gets_the_same_bytes_from_every_backend():
    for case, (data, _, _) in CASES.items():
        outputs = []
        for backend in BACKENDS:
            h = Harness(backend)
            try:
                h.feed(data)
                outputs.append([(r.status, r.body) for r in h.responses()])
            finally:
                h.close()
        assert all(output == outputs[0] for output in outputs), case

"""Behaviour of the request-head policy and the response-head serialiser, over both twins.

The server's own tests (tests/server) check the same policy end to end over
sockets with whichever twin is loaded; these pin each twin down directly, and
check that the two give the same answers and bytes.
"""

from __future__ import annotations

import re

import pytest

from llmstruct._ext import _httphead_py
from llmstruct.server.limits import Limits

LIMITS = Limits(max_header_count=10, max_body_bytes=1000)
HOST = (b"host", b"example.test")


def inspect(module, headers, version="1.1", method="GET", target=b"/"):
    return module.inspect_head(method, target, version, list(headers), LIMITS)


def refusal(module, headers, version="1.1") -> tuple[int, str]:
    with pytest.raises(module.HTTPError) as caught:
        inspect(module, headers, version)
    return caught.value.status, caught.value.detail


def test_both_twins_raise_the_one_http_error_class(httphead_module):
    assert httphead_module.HTTPError is _httphead_py.HTTPError


def test_plain_get_keeps_the_connection_alive_and_has_no_body(httphead_module):
    head = inspect(httphead_module, [HOST, (b"accept", b"*/*")], target=b"/a?b=1")
    assert (head.method, head.target, head.http_version) == ("GET", b"/a?b=1", "1.1")
    assert head.headers == [HOST, (b"accept", b"*/*")]
    assert head.keep_alive is True
    assert not head.has_body
    assert (head.content_length, head.chunked, head.upgrade, head.raw) == (None, False, None, None)
    assert head.expect_continue is False


@pytest.mark.parametrize(
    ("headers", "version", "expected"),
    [
        ([], "1.1", (400, "Missing Host header")),
        ([HOST, HOST], "1.1", (400, "Multiple Host headers")),
        ([HOST, HOST], "1.0", (400, "Multiple Host headers")),
        ([HOST], "0.9", (400, "Invalid request line")),
        ([HOST], "2.0", (505, "HTTP version not supported")),
        ([HOST] + [(b"x", b"y")] * 10, "1.1", (431, "Too many header fields")),
        ([HOST, (b"content-length", b"1"), (b"transfer-encoding", b"chunked")], "1.1",
         (400, "Content-Length with Transfer-Encoding")),
        ([HOST, (b"transfer-encoding", b"chunked")], "1.0",
         (400, "Transfer-Encoding in an HTTP/1.0 request")),
        ([HOST, (b"transfer-encoding", b"gzip, chunked")], "1.1",
         (501, "Only Transfer-Encoding: chunked is supported")),
        ([HOST, (b"transfer-encoding", b"chunked")] * 2, "1.1", (400, "Multiple Host headers")),
        ([HOST, (b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")], "1.1",
         (501, "Only Transfer-Encoding: chunked is supported")),
        ([HOST, (b"content-length", b"1"), (b"content-length", b"1")], "1.1",
         (400, "Multiple Content-Length headers")),
        ([HOST, (b"content-length", b"+1")], "1.1", (400, "Invalid Content-Length")),
        ([HOST, (b"content-length", b"1_0")], "1.1", (400, "Invalid Content-Length")),
        ([HOST, (b"content-length", b"9" * 19)], "1.1", (400, "Invalid Content-Length")),
        ([HOST, (b"content-length", b"1001")], "1.1", (413, "Request body too large")),
    ],
)  # fmt: skip
def test_refuses_what_the_policy_refuses(httphead_module, headers, version, expected):
    assert refusal(httphead_module, headers, version) == expected


def test_http10_needs_no_host_and_closes_unless_asked(httphead_module):
    assert inspect(httphead_module, [], "1.0").keep_alive is False
    head = inspect(httphead_module, [(b"connection", b"Keep-Alive")], "1.0")
    assert head.keep_alive is True


@pytest.mark.parametrize(
    ("values", "keep_alive"),
    [([b"close"], False), ([b"foo, Close "], False), ([b"closed"], True),
     ([b"keep-alive"], True), ([b"x", b"close"], False), ([b""], True)],
)  # fmt: skip
def test_connection_tokens_decide_keep_alive(httphead_module, values, keep_alive):
    headers = [HOST, *((b"connection", v) for v in values)]
    assert inspect(httphead_module, headers).keep_alive is keep_alive


def test_body_framing(httphead_module):
    head = inspect(httphead_module, [HOST, (b"content-length", b" 12 ")])
    assert (head.content_length, head.has_body) == (12, True)
    assert inspect(httphead_module, [HOST, (b"content-length", b"0")]).has_body is False
    head = inspect(httphead_module, [HOST, (b"transfer-encoding", b" Chunked")])
    assert (head.chunked, head.has_body, head.content_length) == (True, True, None)


def test_upgrade_needs_the_connection_token(httphead_module):
    upgrade = (b"upgrade", b" WebSocket ")
    head = inspect(httphead_module, [HOST, (b"connection", b"keep-alive, Upgrade"), upgrade])
    assert head.upgrade == b"websocket"
    assert inspect(httphead_module, [HOST, upgrade]).upgrade is None


def test_expect_100_continue(httphead_module):
    assert inspect(httphead_module, [HOST, (b"expect", b"100-Continue")]).expect_continue
    assert not inspect(httphead_module, [HOST, (b"expect", b"something")]).expect_continue


def test_head_fields_can_be_set_and_rebuilt(httphead_module):
    head = httphead_module.RequestHead("GET", b"/ws", "1.1", [HOST, (b"upgrade", b"websocket")])
    head.raw = head.rebuild_raw()
    head.keep_alive = False
    assert head.raw == b"GET /ws HTTP/1.1\r\nhost: example.test\r\nupgrade: websocket\r\n\r\n"
    assert head.keep_alive is False


@pytest.mark.parametrize(
    ("target", "expected"),
    [(b"/a/b?c=1&d", ("/a/b", b"c=1&d")), (b"/a", ("/a", b"")),
     (b"http://h.test:8/x?y", ("/x", b"y")), (b"http://h.test", ("/", b"")),
     (b"*", ("*", b"")), (b"/caf\xe9", ("/caf\xe9", b""))],
)  # fmt: skip
def test_split_target(httphead_module, target, expected):
    assert httphead_module.split_target(target) == expected


DATE = rb"date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n"


@pytest.mark.parametrize(
    ("args", "tail"),
    [((200, 5, True, False), b"content-length: 5\r\n\r\n"),
     ((200, 5, False, False), b"content-length: 5\r\nconnection: close\r\n\r\n"),
     ((200, None, True, False), b"transfer-encoding: chunked\r\n\r\n"),
     ((200, None, False, True), b"connection: close\r\n\r\n"),
     ((200, 5, True, True), b"content-length: 5\r\nconnection: keep-alive\r\n\r\n"),
     ((204, 0, True, False), b"\r\n"), ((304, 9, True, False), b"\r\n"),
     ((101, None, True, False), b"\r\n")],
)  # fmt: skip
def test_response_head_bytes(httphead_module, args, tail):
    status, length, keep_alive, http10 = args
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"r-1")]
    head = httphead_module.response_head(status, headers, length, keep_alive, http10)
    line = _httphead_py.STATUS_LINES[status]
    pattern = (
        re.escape(line) + DATE + b"content-type: application/json\r\nx-request-id: r-1\r\n"
        + re.escape(tail)
    )  # fmt: skip
    assert re.fullmatch(pattern, head), head


def test_response_head_for_a_status_without_a_phrase(httphead_module):
    head = httphead_module.response_head(799, [], 0, True)
    assert head.startswith(b"HTTP/1.1 799 \r\ndate: ")


def test_response_head_carries_a_body_after_the_blank_line(httphead_module):
    head = httphead_module.response_head(200, [(b"a", b"b")], 5, True, False, b"hello")
    assert head.endswith(b"a: b\r\ncontent-length: 5\r\n\r\nhello")


@pytest.mark.parametrize(
    ("shape", "headers", "length", "body"),
    [(tuple, [(b"a", b"b")], 3, b"abc"),
     (iter, [(b"a", b"b")], 0, b""),  # any iterable, read once
     (list, [(b"a", bytearray(b"b"))], 1, b"x"),  # bytes-like values
     (list, [[b"a", b"b"]], 1, b"x"),  # pairs that are not tuples
     (list, [(b"a", b"b")], 3, bytearray(b"abc")),  # a bytes-like body
     (list, [], 10**20, b""),  # a length past 64 bits
     (list, [], True, b""),  # an int subclass
     (list, [(b"x-many", b"v" * 5000)] * 20, 123456789, b"z" * 70000)],
)  # fmt: skip
def test_twins_write_the_same_head_for_any_bytes_like_input(
    httphead_module, shape, headers, length, body
):
    ours = httphead_module.response_head(200, shape(headers), length, True, False, body)
    spec = _httphead_py.response_head(200, shape(headers), length, True, False, body)
    assert ours.split(b"\r\n", 2)[::2] == spec.split(b"\r\n", 2)[::2]  # the Date may tick


class Shifty:
    """A header pair that grows each time it is unpacked: sizing it once and copying
    it later would overrun the buffer, so it must be read once."""

    def __init__(self) -> None:
        self.reads = 0

    def __iter__(self):
        self.reads += 1
        return iter((b"x-grow", b"v" * 1000 * self.reads))


def test_response_head_reads_each_header_pair_once(httphead_module):
    head = httphead_module.response_head(200, [Shifty()], 0, True)
    assert b"x-grow: " + b"v" * 1000 + b"\r\n" in head
    assert head.endswith(b"content-length: 0\r\n\r\n")


def test_response_head_refuses_what_is_not_bytes_as_the_twin_does(httphead_module):
    with pytest.raises(TypeError):
        httphead_module.response_head(200, [("a", b"b")], 0, True)
    with pytest.raises(TypeError):
        httphead_module.response_head(200, [], 1, True, False, "x")


def test_http_date_is_an_imf_fixdate(httphead_module):
    assert re.fullmatch(DATE, b"date: " + httphead_module.http_date() + b"\r\n")


def test_twins_agree_on_heads_and_bytes(httphead_module):
    cases = [
        [HOST],
        [HOST, (b"connection", b"close")],
        [HOST, (b"content-length", b"7"), (b"expect", b"100-continue")],
        [HOST, (b"transfer-encoding", b"chunked"), (b"connection", b"upgrade"),
         (b"upgrade", b"h2c")],
    ]  # fmt: skip
    fields = ("method", "target", "http_version", "headers", "keep_alive", "content_length",
              "chunked", "upgrade", "expect_continue", "raw")  # fmt: skip
    for headers in cases:
        ours = inspect(httphead_module, headers)
        spec = inspect(_httphead_py, headers)
        assert [getattr(ours, f) for f in fields] == [getattr(spec, f) for f in fields]
    for status in (200, 404, 500):
        ours = httphead_module.response_head(status, [(b"a", b"b")], 3, False)
        spec = _httphead_py.response_head(status, [(b"a", b"b")], 3, False)
        assert ours.split(b"\r\n", 2)[::2] == spec.split(b"\r\n", 2)[::2]  # the Date may tick

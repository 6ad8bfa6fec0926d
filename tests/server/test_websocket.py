"""WebSocket behaviour over real loopback sockets against the started server.

Handshake, messages, fragmentation, control frames and every close path of
RFC 6455, with a raw client (``ws_helpers.RawClient``) that can also send the
frames a conforming client never would. Upgrade tests run over both HTTP
backends (the ``backend`` fixture); the frame-level ones over h11, since after
the hand-over the HTTP backend no longer takes part.
"""

from __future__ import annotations

import asyncio
import logging
import struct

import orjson
import pytest

from llmstruct.server.app import App
from llmstruct.server.ws_socket import ConnectionClosed
from tests.server.ws_helpers import (
    BINARY,
    CLOSE,
    CONT,
    FAST,
    PING,
    PONG,
    TEXT,
    RawClient,
    async_test,
    close_payload,
    echo_app,
    encode_frame,
    handshake_request,
    running_server,
    wait_for,
)


# -- opening handshake ----------------------------------------------------------------------------
@async_test
async def test_upgrade_answers_101_without_extensions_even_when_offered(backend):
    async with running_server(echo_app(), http=backend) as (_, port):
        offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        client = await RawClient.connect(port, extra=offer)
        head = client.response_head.lower()
        assert b"sec-websocket-extensions" not in head
        assert b"upgrade: websocket" in head and b"connection: upgrade" in head
        client.send_text("hello")
        assert await client.recv_message() == (TEXT, b"hello")
        await client.close_handshake()
        await client.aclose()


@async_test
async def test_frames_sent_with_the_request_head_are_not_lost(backend):
    # Bytes that arrive in the same read as the head are handed over with it.
    async with running_server(echo_app(), http=backend) as (_, port):
        early = b"".join(encode_frame(TEXT, b"%d" % i) for i in range(3))
        client = await RawClient.connect(port, tail=early)
        assert [await client.recv_message() for _ in range(3)] == [
            (TEXT, b"0"),
            (TEXT, b"1"),
            (TEXT, b"2"),
        ]
        await client.aclose()


@pytest.mark.parametrize(
    "headers, status",
    [
        (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400),
        (
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            426,
        ),
    ],
    ids=["no-key", "old-version"],
)
@async_test
async def test_invalid_upgrade_gets_an_error_status_and_close(backend, headers, status):
    async with running_server(echo_app(), http=backend) as (_, port):
        client = await RawClient.open(port)
        client.writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        head = await client.read_head()
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        if status == 426:
            assert b"sec-websocket-version: 13" in head.lower()
        assert await client.at_eof()
        await client.aclose()


@async_test
async def test_handler_sees_path_query_headers_and_path_params(backend):
    app = App()

    @app.websocket("/rooms/{room}")
    async def room(ws):
        await ws.send_json(
            {
                "path": ws.path,
                "query": ws.query_params,
                "header": ws.headers.get("x-client"),
                "host": ws.headers.get("host"),
                "params": ws.path_params,
                "client_is_loopback": ws.client[0] == "127.0.0.1",
            }
        )

    async with running_server(app, http=backend) as (_, port):
        client = await RawClient.connect(
            port, path="/rooms/r%201?a=1&b=x%20y", extra=b"X-Client: tester\r\n"
        )
        opcode, payload = await client.recv_message()
        assert opcode == TEXT
        assert orjson.loads(payload) == {
            "path": "/rooms/r%201",
            "query": {"a": "1", "b": "x y"},
            "header": "tester",
            "host": "127.0.0.1",
            "params": {"room": "r 1"},
            "client_is_loopback": True,
        }
        # The handler returned: the server closes normally.
        assert (await client.recv_close()).close_code == 1000
        await client.aclose()


# -- messages -------------------------------------------------------------------------------------
@async_test
async def test_echoes_text_and_binary_messages_of_every_length_encoding():
    async with running_server(echo_app()) as (_, port):
        client = await RawClient.connect(port)
        for size in (0, 125, 126, 65535, 65536, 300_000):
            client.send_binary(b"\x00\xff" * (size // 2))
            assert await client.recv_message() == (BINARY, b"\x00\xff" * (size // 2))
        client.send_text("héllo wörld ✓")
        assert await client.recv_message() == (TEXT, "héllo wörld ✓".encode())
        await client.close_handshake()
        await client.aclose()


@async_test
async def test_fragmented_message_is_reassembled_around_a_ping():
    async with running_server(echo_app()) as (_, port):
        client = await RawClient.connect(port)
        text = "fragmenté".encode()
        client.send_frame(TEXT, text[:5], fin=False)  # splits the é across frames
        client.send_frame(PING, b"mid")
        client.send_frame(CONT, text[5:9], fin=False)
        client.send_frame(CONT, text[9:], fin=True)
        pong = await client.recv_frame()
        assert (pong.opcode, pong.payload) == (PONG, b"mid")
        assert await client.recv_message() == (TEXT, text)
        await client.aclose()


@async_test
async def test_ping_gets_a_pong_with_the_same_payload():
    async with running_server(echo_app()) as (_, port):
        client = await RawClient.connect(port)
        client.send_frame(PING, b"\x01payload")
        frame = await client.recv_frame()
        assert (frame.opcode, frame.payload) == (PONG, b"\x01payload")
        await client.aclose()


@async_test
async def test_send_json_sends_orjson_as_a_text_message():
    app = App()

    @app.websocket("/json")
    async def handler(ws):
        await ws.send_json({"type": "pong", "n": [1, 2.5, None]})
        await ws.receive()

    async with running_server(app) as (_, port):
        client = await RawClient.connect(port, path="/json")
        assert await client.recv_message() == (TEXT, b'{"type":"pong","n":[1,2.5,null]}')
        await client.aclose()


# -- closing --------------------------------------------------------------------------------------
@async_test
async def test_client_close_is_echoed_with_its_code_and_ends_the_handler():
    seen = []
    app = App()

    @app.websocket("/ws")
    async def handler(ws):
        try:
            await ws.receive()
        except ConnectionClosed as exc:
            seen.append((exc.code, exc.reason))

    async with running_server(app) as (server, port):
        client = await RawClient.connect(port, path="/ws")
        client.send_frame(CLOSE, close_payload(4001, "done here"))
        echo = await client.recv_close()
        assert (echo.close_code, echo.close_reason) == (4001, "done here")
        assert await client.at_eof()  # the server closes TCP first (RFC 6455 §7.1.1)
        await wait_for(lambda: seen)
        assert seen == [(4001, "done here")]
        await wait_for(lambda: len(server.state.websockets) == 0)
        await client.aclose()


@async_test
async def test_empty_close_frame_is_echoed_empty():
    async with running_server(echo_app()) as (_, port):
        client = await RawClient.connect(port)
        client.send_frame(CLOSE, b"")
        assert (await client.recv_close()).payload == b""
        assert await client.at_eof()
        await client.aclose()


@async_test
async def test_handler_closing_with_a_code_waits_for_the_echo():
    done = []
    app = App()

    @app.websocket("/bye")
    async def handler(ws):
        await ws.close(4000, "bye")
        done.append(ws.close_code)

    async with running_server(app) as (_, port):
        client = await RawClient.connect(port, path="/bye")
        frame = await client.recv_close()
        assert (frame.close_code, frame.close_reason) == (4000, "bye")
        assert not done  # still waiting for our echo
        client.send_frame(CLOSE, frame.payload)
        assert await client.at_eof()
        await wait_for(lambda: done)
        assert done == [4000]
        await client.aclose()


@async_test
async def test_peer_that_never_echoes_the_close_is_disconnected():
    app = App()

    @app.websocket("/bye")
    async def handler(ws):
        await ws.close()

    async with running_server(app, FAST.replace(ws_close_timeout=0.2)) as (_, port):
        client = await RawClient.connect(port, path="/bye")
        assert (await client.recv_close()).close_code == 1000
        assert await client.at_eof()  # after ws_close_timeout, without our echo
        await client.aclose()


@async_test
async def test_handler_error_closes_with_1011_and_is_logged(caplog):
    app = App()

    @app.websocket("/boom")
    async def handler(ws):
        raise RuntimeError("boom (expected by the test)")

    with caplog.at_level(logging.ERROR, logger="llmstruct.server.websocket"):
        async with running_server(app) as (_, port):
            client = await RawClient.connect(port, path="/boom")
            assert (await client.recv_close()).close_code == 1011
            await client.aclose()
    assert "boom (expected by the test)" in caplog.text


@async_test
async def test_sending_after_close_raises_connection_closed():
    outcome = []
    app = App()

    @app.websocket("/late")
    async def handler(ws):
        try:
            await ws.receive()
        except ConnectionClosed:
            pass
        try:
            await ws.send_text("too late")
        except ConnectionClosed as exc:
            outcome.append(exc.code)

    async with running_server(app) as (_, port):
        client = await RawClient.connect(port, path="/late")
        await client.close_handshake(1000)
        await wait_for(lambda: outcome)
        assert outcome == [1000]
        await client.aclose()


@pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 2999, 5000])
@async_test
async def test_close_refuses_codes_an_endpoint_may_not_send(code):
    errors = []
    app = App()

    @app.websocket("/x")
    async def handler(ws):
        try:
            await ws.close(code)
        except ValueError as exc:
            errors.append(exc)

    async with running_server(app) as (_, port):
        client = await RawClient.connect(port, path="/x")
        assert (await client.recv_close()).close_code == 1000  # the handler returned
        assert len(errors) == 1
        await client.aclose()


# -- a client that disappears ---------------------------------------------------------------------
@pytest.mark.parametrize("how", ["fin", "reset"])
@async_test
async def test_client_that_disappears_ends_the_handler_with_1006(how):
    seen = []
    app = App()

    @app.websocket("/ws")
    async def handler(ws):
        try:
            while True:
                await ws.receive()
        except ConnectionClosed as exc:
            seen.append(exc.code)

    async with running_server(app) as (server, port):
        client = await RawClient.connect(port, path="/ws")
        await wait_for(lambda: len(server.state.websockets) == 1)
        if how == "reset":
            client.reset()
        else:
            await client.aclose()
        await wait_for(lambda: seen)
        assert seen == [1006]
        await wait_for(lambda: len(server.state.websockets) == 0)
        await client.aclose()


# -- protocol errors: the server fails the connection ---------------------------------------------
PROTOCOL_ERRORS = {
    "unmasked-frame": dict(opcode=TEXT, payload=b"x", mask=False),
    "reserved-bit": dict(opcode=TEXT, payload=b"x", rsv=1),
    "reserved-opcode": dict(opcode=0x3, payload=b""),
    "reserved-control-opcode": dict(opcode=0xB, payload=b""),
    "fragmented-ping": dict(opcode=PING, payload=b"x", fin=False),
    "long-ping": dict(opcode=PING, payload=b"x" * 126),
    "continuation-first": dict(opcode=CONT, payload=b"x"),
    "close-1-byte": dict(opcode=CLOSE, payload=b"\x03"),
    "close-code-999": dict(opcode=CLOSE, payload=close_payload(999)),
    "close-code-1005": dict(opcode=CLOSE, payload=close_payload(1005)),
}


@pytest.mark.parametrize("frame", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
@async_test
async def test_protocol_error_fails_the_connection_with_1002(frame):
    async with running_server(echo_app()) as (_, port):
        client = await RawClient.connect(port)
        client.send_frame(**frame)
        assert (await client.recv_close()).close_code == 1002
        assert await client.at_eof()
        await client.aclose()


@async_test
async def test_new_message_inside_a_fragmented_one_is_a_protocol_error():
    async with running_server(echo_app()) as (_, port):
        client = await RawClient.connect(port)
        client.send_frame(TEXT, b"a", fin=False)
        client.send_frame(TEXT, b"b")
        assert (await client.recv_close()).close_code == 1002
        await client.aclose()


@pytest.mark.parametrize(
    "frames",
    [
        [(TEXT, b"\xff", True)],
        [(TEXT, b"ok \xce", False), (CONT, b"\xba\xff", True)],
        [(CLOSE, close_payload(1000) + b"\xff", True)],
    ],
    ids=["text", "across-fragments", "close-reason"],
)
@async_test
async def test_invalid_utf8_fails_the_connection_with_1007(frames):
    async with running_server(echo_app()) as (_, port):
        client = await RawClient.connect(port)
        for opcode, payload, fin in frames:
            client.send_frame(opcode, payload, fin=fin)
        assert (await client.recv_close()).close_code == 1007
        assert await client.at_eof()
        await client.aclose()


# -- message size cap -----------------------------------------------------------------------------
CAPPED = FAST.replace(ws_max_message=1000)


@async_test
async def test_message_at_the_cap_is_accepted():
    async with running_server(echo_app(), CAPPED) as (_, port):
        client = await RawClient.connect(port)
        client.send_binary(b"x" * 1000)
        assert await client.recv_message() == (BINARY, b"x" * 1000)
        await client.aclose()


@pytest.mark.parametrize(
    "frames",
    [
        [(BINARY, b"x" * 1001, True)],
        [(TEXT, b"a" * 600, False), (CONT, b"b" * 401, True)],
        [(TEXT, "é".encode() * 501, True)],  # 501 characters, 1002 bytes: the cap is in bytes
    ],
    ids=["one-frame", "fragments", "utf8-bytes"],
)
@async_test
async def test_message_over_the_cap_closes_with_1009(frames):
    async with running_server(echo_app(), CAPPED) as (_, port):
        client = await RawClient.connect(port)
        for opcode, payload, fin in frames:
            client.send_frame(opcode, payload, fin=fin)
        assert (await client.recv_close()).close_code == 1009
        assert await client.at_eof()
        await client.aclose()


@async_test
async def test_huge_declared_length_is_refused_before_it_arrives():
    # A frame header announcing 2**62 bytes: the first chunk over the cap ends it.
    async with running_server(echo_app(), CAPPED) as (_, port):
        client = await RawClient.connect(port)
        header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 62) + b"\x00" * 4
        client.writer.write(header + b"x" * 2000)
        assert (await client.recv_close()).close_code == 1009
        await client.aclose()


# -- keepalive ------------------------------------------------------------------------------------
@async_test
async def test_peer_that_does_not_answer_pings_is_closed_with_1011():
    limits = FAST.replace(ws_ping_interval=0.05, ws_ping_timeout=0.1)
    async with running_server(echo_app(), limits) as (_, port):
        client = await RawClient.connect(port)
        ping = await client.recv_frame()
        assert ping.opcode == PING and len(ping.payload) == 4
        close = await client.recv_close()  # no pong sent
        assert (close.close_code, close.close_reason) == (1011, "keepalive ping timeout")
        assert await client.at_eof()
        await client.aclose()


@async_test
async def test_peer_that_answers_pings_stays_connected():
    limits = FAST.replace(ws_ping_interval=0.05, ws_ping_timeout=1.0)
    async with running_server(echo_app(), limits) as (_, port):
        client = await RawClient.connect(port)
        for _ in range(5):
            ping = await client.recv_frame()
            assert ping.opcode == PING
            client.send_frame(PONG, ping.payload)
        client.send_text("still here")
        assert await client.recv_message() == (TEXT, b"still here")
        await client.aclose()


@async_test
async def test_stale_pong_does_not_count_as_an_answer():
    limits = FAST.replace(ws_ping_interval=0.05, ws_ping_timeout=0.1)
    async with running_server(echo_app(), limits) as (_, port):
        client = await RawClient.connect(port)
        assert (await client.recv_frame()).opcode == PING
        client.send_frame(PONG, b"nope")  # unsolicited payload
        assert (await client.recv_close()).close_code == 1011
        await client.aclose()


# -- shutdown -------------------------------------------------------------------------------------
@async_test
async def test_server_shutdown_closes_websockets_with_1001():
    seen = []
    app = App()

    @app.websocket("/ws")
    async def handler(ws):
        try:
            await ws.receive()
        except ConnectionClosed as exc:
            seen.append(exc.code)

    async with running_server(app) as (server, port):
        client = await RawClient.connect(port, path="/ws")
        await wait_for(lambda: len(server.state.websockets) == 1)
        shutdown = asyncio.ensure_future(server.shutdown(timeout=2.0))
        close = await client.recv_close()
        assert close.close_code == 1001
        client.send_frame(CLOSE, close.payload)
        assert await client.at_eof()
        await shutdown
        assert seen == [1001]
        await client.aclose()


@async_test
async def test_shutdown_cancels_a_handler_that_ignores_the_close():
    cancelled = []
    app = App()

    @app.websocket("/stubborn")
    async def handler(ws):
        try:
            await asyncio.sleep(60)  # never looks at the connection
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    limits = FAST.replace(ws_close_timeout=0.2)
    async with running_server(app, limits) as (server, port):
        client = await RawClient.connect(port, path="/stubborn")
        await wait_for(lambda: len(server.state.websockets) == 1)
        await server.shutdown(timeout=1.0)
        assert cancelled == [True]
        assert len(server.state.websockets) == 0
        assert (await client.recv_close()).close_code == 1001
        await client.aclose()


def test_handshake_request_helper_is_well_formed():
    request = handshake_request("/p")
    assert request.startswith(b"GET /p HTTP/1.1\r\n") and request.endswith(b"\r\n\r\n")

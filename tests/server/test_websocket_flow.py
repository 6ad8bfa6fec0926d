"""WebSocket flow control and the standalone handshake, over real loopback sockets.

Send side: a bounded outbox behind the transport's high-water mark, senders that
wait, and a peer that never reads cut off after ``send_timeout``. Receive side:
reading pauses while the handler lags, and keepalive never blames the peer for
that pause. The last tests serve ``WebSocketProtocol`` on its own (no HTTP
layer), where it reads the request head itself.
"""

from __future__ import annotations

import asyncio

from llmstruct.server.app import App
from llmstruct.server.websocket import WebSocketConnections, WebSocketProtocol
from llmstruct.server.ws_socket import ConnectionClosed
from tests.server.ws_helpers import (
    BINARY,
    FAST,
    PING,
    TEXT,
    RawClient,
    async_test,
    echo_app,
    encode_frame,
    handshake_request,
    only_websocket,
    running_server,
    wait_for,
)

CHUNK = b"m" * 65536


def sender_app(count: int, progress: list[int], outcome: list[object]) -> App:
    """``/send`` pushes ``count`` numbered 64 KiB messages as fast as it may."""
    app = App()

    @app.websocket("/send")
    async def handler(ws):
        try:
            for index in range(count):
                await ws.send_bytes(b"%08d" % index + CHUNK)
                progress.append(index)
            await ws.receive()
        except ConnectionClosed as exc:
            outcome.append(exc.code)

    return app


@async_test
async def test_sender_waits_once_the_send_queue_is_full_and_nothing_is_lost():
    progress: list[int] = []
    count = 200  # 13 MB: more than loopback and the client can buffer unread
    async with running_server(sender_app(count, progress, [])) as (server, port):
        client = await RawClient.connect(port, path="/send", rcvbuf=16384)
        await wait_for(lambda: len(server.state.websockets) == 1)
        protocol = only_websocket(server)
        await wait_for(lambda: len(protocol._senders) == 1)  # the handler waits in send()
        assert protocol._write_paused
        assert len(protocol._outbox) == FAST.ws_send_queue
        assert len(progress) < count
        for index in range(count):  # now read: every message arrives, in order
            opcode, payload = await client.recv_message()
            assert (opcode, payload[:8]) == (BINARY, b"%08d" % index)
        assert progress == list(range(count))
        await client.aclose()


@async_test
async def test_peer_that_never_reads_is_aborted_after_send_timeout():
    outcome: list[object] = []
    limits = FAST.replace(send_timeout=0.2)
    async with running_server(sender_app(10_000, [], outcome), limits) as (server, port):
        client = await RawClient.connect(port, path="/send", rcvbuf=16384)
        await wait_for(lambda: len(server.state.websockets) == 1)
        protocol = only_websocket(server)
        await wait_for(lambda: outcome)
        assert outcome == [1006]  # the handler's send raised
        assert protocol._closed.reason == "send timeout"
        await wait_for(lambda: len(server.state.websockets) == 0)
        await client.aclose()


@async_test
async def test_ping_flood_from_a_peer_that_never_reads_is_cut_off():
    limits = FAST.replace(send_timeout=0.2)
    async with running_server(echo_app(), limits) as (server, port):
        client = await RawClient.connect(port, rcvbuf=16384)
        await wait_for(lambda: len(server.state.websockets) == 1)
        protocol = only_websocket(server)
        flood = encode_frame(PING, b"p" * 125) * 1000
        for _ in range(40):  # ~5 MB of pings, each owed a pong we cannot deliver
            if client.writer.transport.is_closing():
                break
            client.writer.write(flood)
            await asyncio.sleep(0)
        await wait_for(lambda: len(server.state.websockets) == 0)
        # The pongs filled the write buffer, the server stopped reading pings, and
        # the transport that made no progress for send_timeout was aborted.
        assert protocol._closed.reason == "send timeout"
        client.writer.transport.abort()
        await client.aclose()


def lagging_app(release: asyncio.Event) -> App:
    """``/lag`` reads nothing until ``release`` is set, then echoes everything."""
    app = App()

    @app.websocket("/lag")
    async def handler(ws):
        await release.wait()
        async for message in ws:
            await ws.send(message)

    return app


@async_test
async def test_reading_pauses_while_the_handler_lags_and_resumes_after():
    release = asyncio.Event()
    async with running_server(lagging_app(release)) as (server, port):
        client = await RawClient.connect(port, path="/lag")
        for index in range(100):
            client.send_binary(b"%04d" % index + b"x" * 8192)
        await wait_for(lambda: len(server.state.websockets) == 1)
        protocol = only_websocket(server)
        await wait_for(lambda: protocol._read_paused)
        assert len(protocol._inbox) < 100  # it stopped taking messages in
        release.set()
        for index in range(100):
            opcode, payload = await client.recv_message()
            assert (opcode, payload[:4]) == (BINARY, b"%04d" % index)
        await client.aclose()


@async_test
async def test_keepalive_does_not_blame_the_peer_for_our_paused_reading():
    release = asyncio.Event()
    # A naive keepalive would have pinged and given up many times during the pause.
    limits = FAST.replace(ws_ping_interval=0.05, ws_ping_timeout=0.3)
    async with running_server(lagging_app(release), limits) as (server, port):
        client = await RawClient.connect(port, path="/lag")
        for index in range(100):
            client.send_binary(b"%04d" % index + b"x" * 8192)
        await wait_for(lambda: len(server.state.websockets) == 1)
        protocol = only_websocket(server)
        await wait_for(lambda: protocol._read_paused)
        await asyncio.sleep(1.0)  # many ping periods pass; pongs could not be read
        assert protocol.close_code is None
        release.set()
        for index in range(100):  # recv_message answers pings from now on
            assert (await client.recv_message())[1][:4] == b"%04d" % index
        await client.aclose()


# -- the protocol on its own: it reads the request head itself ----------------------------------
async def standalone(limits=FAST):
    registry = WebSocketConnections()

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: WebSocketProtocol(echo, limits, connections=registry), "127.0.0.1", 0
    )
    return server, server.sockets[0].getsockname()[1], registry


async def stop(server, registry):
    await registry.close_all(timeout=1.0)
    server.close()
    await server.wait_closed()


@async_test
async def test_standalone_head_arriving_byte_by_byte_is_accepted():
    server, port, registry = await standalone()
    client = await RawClient.open(port)
    for byte in handshake_request("/anything"):
        client.writer.write(bytes([byte]))
        await client.writer.drain()
    assert (await client.read_head()).startswith(b"HTTP/1.1 101 ")
    client.send_text("ok")
    assert await client.recv_message() == (TEXT, b"ok")
    await client.aclose()
    await stop(server, registry)


@async_test
async def test_standalone_head_that_never_ends_gets_408_and_close():
    server, port, registry = await standalone(FAST.replace(header_timeout=0.1))
    client = await RawClient.open(port)
    client.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert (await client.read_head()).startswith(b"HTTP/1.1 408 ")
    assert await client.at_eof()
    await client.aclose()
    await stop(server, registry)


@async_test
async def test_standalone_head_over_the_limit_gets_431_and_close():
    server, port, registry = await standalone(FAST.replace(max_head_bytes=1024))
    client = await RawClient.open(port)
    client.writer.write(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 2000)
    assert (await client.read_head()).startswith(b"HTTP/1.1 431 ")
    assert await client.at_eof()
    await client.aclose()
    await stop(server, registry)


@async_test
async def test_standalone_non_get_upgrade_gets_400():
    server, port, registry = await standalone()
    client = await RawClient.open(port)
    client.writer.write(handshake_request().replace(b"GET ", b"POST ", 1))
    assert (await client.read_head()).startswith(b"HTTP/1.1 400 ")
    assert await client.at_eof()
    await client.aclose()
    await stop(server, registry)


@async_test
async def test_close_all_without_connections_returns_at_once():
    await WebSocketConnections().close_all()

"""The ``/api/v1/ws`` JSON message protocol over a real loopback WebSocket."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from llmstruct.server.app import App
from llmstruct.server.ws_api import MessageDispatcher, MessageError, api_ws
from tests.server.ws_helpers import BINARY, TEXT, RawClient, async_test, running_server


def api_app(handler=api_ws) -> App:
    app = App()
    app.websocket("/api/v1/ws")(handler)
    return app


async def request(client: RawClient, message: bytes, opcode: int = TEXT) -> dict:
    client.send_frame(opcode, message)
    got_opcode, payload = await client.recv_message()
    assert got_opcode == TEXT
    return orjson.loads(payload)


@async_test
async def test_ping_message_gets_pong(backend):
    async with running_server(api_app(), http=backend) as (_, port):
        client = await RawClient.connect(port, path="/api/v1/ws")
        assert await request(client, b'{"type":"ping"}') == {"type": "pong"}
        assert await request(client, b'{"type":"ping","data":{"x":1}}', BINARY) == {"type": "pong"}
        await client.close_handshake()
        await client.aclose()


@pytest.mark.parametrize(
    "message, detail",
    [
        (b"{not json", "Invalid JSON"),
        (b"", "Invalid JSON"),
        (b"[1,2]", "Message must be a JSON object with a string 'type'"),
        (b'{"data":{}}', "Message must be a JSON object with a string 'type'"),
        (b'{"type":7}', "Message must be a JSON object with a string 'type'"),
        (b'{"type":"launch_rockets"}', "Unknown message type: launch_rockets"),
    ],
    ids=["not-json", "empty", "array", "no-type", "type-not-str", "unknown-type"],
)
@async_test
async def test_malformed_message_gets_error_and_the_connection_stays_open(message, detail):
    async with running_server(api_app()) as (_, port):
        client = await RawClient.connect(port, path="/api/v1/ws")
        assert await request(client, message) == {"type": "error", "data": {"detail": detail}}
        assert await request(client, b'{"type":"ping"}') == {"type": "pong"}
        await client.aclose()


@async_test
async def test_handler_errors_are_answered_and_the_session_goes_on(caplog):
    dispatcher = MessageDispatcher()

    @dispatcher.on("picky")
    async def picky(ws, data):
        raise MessageError("data.n must be positive")

    @dispatcher.on("broken")
    async def broken(ws, data):
        raise RuntimeError("bug (expected by the test)")

    @dispatcher.on("ping")
    async def ping(ws, data):
        await ws.send_json({"type": "pong"})

    with caplog.at_level(logging.ERROR, logger="llmstruct.server.ws_api"):
        async with running_server(api_app(dispatcher)) as (_, port):
            client = await RawClient.connect(port, path="/api/v1/ws")
            assert await request(client, b'{"type":"picky"}') == {
                "type": "error",
                "data": {"detail": "data.n must be positive"},
            }
            assert await request(client, b'{"type":"broken"}') == {
                "type": "error",
                "data": {"detail": "Internal server error"},
            }
            assert await request(client, b'{"type":"ping"}') == {"type": "pong"}
            await client.aclose()
    assert "bug (expected by the test)" in caplog.text


@async_test
async def test_background_message_does_not_block_pings_and_is_cancelled_on_close():
    dispatcher = MessageDispatcher()
    started, cancelled = asyncio.Event(), []

    @dispatcher.on("slow", background=True)
    async def slow(ws, data):
        started.set()
        await ws.send_json({"type": "slow_started"})
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    @dispatcher.on("ping")
    async def ping(ws, data):
        await ws.send_json({"type": "pong"})

    async with running_server(api_app(dispatcher)) as (server, port):
        client = await RawClient.connect(port, path="/api/v1/ws")
        assert await request(client, b'{"type":"slow"}') == {"type": "slow_started"}
        assert await request(client, b'{"type":"ping"}') == {"type": "pong"}
        await client.close_handshake()
        while not cancelled:
            await asyncio.sleep(0.01)
        assert cancelled == [True]
        await client.aclose()


def test_a_type_can_only_be_registered_once():
    dispatcher = MessageDispatcher()
    dispatcher.on("x")(api_ws)
    with pytest.raises(ValueError, match="already handled"):
        dispatcher.on("x")(api_ws)

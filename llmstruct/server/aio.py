"""The coroutines of the request path, kept out of the compiled twins.

The protocol, the request, the app and the middleware are compiled from their
pure twins' source (``llmstruct._ext``), but their coroutines live here, in a
module that is never compiled: Cython's coroutine objects are slower to drive
from an asyncio task than CPython's own (measured: ~0.8 us more per request
through two of them, on Python 3.11 with uvloop, and ~10 % of the throughput of
an endpoint that awaits a thread), while there is nothing to gain from compiling
code that mostly waits. The twins' methods (``Cycle.read``, ``Request.body``,
``App._run_async``, ...) return these functions' coroutines, so callers still
``await`` the methods as before.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmstruct.server.http_common import (
    ClientDisconnect,
    HTTPError,
    HTTPException,
    response_head,
)

__all__ = [
    "close_content",
    "finish_async",
    "gzip_body",
    "gzip_stream",
    "iterate_content",
    "read_body",
    "request_body",
    "request_json",
    "request_stream",
    "run_async",
    "stream_response",
]

log = logging.getLogger("llmstruct.server")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


# -- the protocol's (a Cycle and its HttpProtocol) ------------------------------------------------
async def read_body(cycle: Any) -> bytes:
    """``Cycle.read``: the next buffered body bytes; b"" at the end. Raises the body's error."""
    proto = cycle.proto
    if cycle.head.expect_continue and not cycle.continue_sent and not cycle.started:
        cycle.continue_sent = True
        if not proto.closing:
            proto.transport.write(_CONTINUE)
    while not cycle.chunks:
        if cycle.error is not None:
            raise cycle.error
        if cycle.complete:
            return b""
        proto.want_body(cycle)
        cycle.waiter = proto.loop.create_future()
        await cycle.waiter
    data = cycle.chunks[0] if len(cycle.chunks) == 1 else b"".join(cycle.chunks)
    cycle.chunks = []
    cycle.buffered = 0
    proto.want_body(cycle)
    return data


async def stream_response(cycle: Any, response: Any) -> None:
    """``Cycle.stream``: write a streaming response chunk by chunk, waiting while the
    client is behind."""
    proto = cycle.proto
    keep_alive = proto.keep_alive(cycle, response)
    http10 = cycle.head.http_version == "1.0"
    if http10:
        keep_alive = False  # no chunked framing for 1.0: the close ends the body
    head_only = cycle.head.method == "HEAD" or response.status in (204, 304)
    cycle.started = True
    if proto.closing:
        await response.close_iterator()
        raise ClientDisconnect()
    proto.transport.write(
        response_head(response.status, response.headers, None, keep_alive, http10)
    )
    if head_only:
        await response.close_iterator()
        proto.complete(cycle, keep_alive)
        return
    chunked = not http10
    try:
        async for chunk in response.iterate():
            if proto.closing:
                raise ClientDisconnect()
            if chunk:
                if chunked:
                    proto.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    proto.transport.write(chunk)
            if proto.write_paused:
                await proto.drain()
    finally:
        await response.close_iterator()
    if chunked and not proto.closing:
        proto.transport.write(b"0\r\n\r\n")
    proto.complete(cycle, keep_alive)


async def finish_async(proto: Any, cycle: Any, result: Any) -> None:
    """The task of a request whose answer is awaited or streamed: write it, then go on
    with the connection's queue."""
    try:
        response = result if isinstance(result, proto.app.response_class) else await result
        if response.streaming:
            await cycle.stream(response)
        else:
            cycle.write(response)
    except ClientDisconnect:
        proto.complete(cycle, None)
    except Exception:
        log.exception("internal error while writing a response")
        if cycle.started:
            proto.abort()
            proto.complete(cycle, None)
        else:
            proto.complete(cycle, None, error=HTTPError(500, "Internal Server Error"))
    cycle.task = None
    if not cycle.done:
        proto.complete(cycle, None)
    proto._run_queue()


# -- the request's ------------------------------------------------------------------------------
async def request_stream(request: Any) -> AsyncIterator[bytes]:
    """``Request.stream``: the body as it arrives."""
    if request._source is None:
        return
    while True:
        chunk = await request._source.read()
        if not chunk:
            return
        yield chunk


async def request_body(request: Any) -> bytes:
    """``Request.body``: the whole body."""
    chunks = [chunk async for chunk in request_stream(request)]
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def request_json(request: Any) -> Any:
    """``Request.json``: the body parsed as JSON; invalid JSON is a 422 shaped like FastAPI's."""
    raw = await request_body(request)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = [
            {"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error",
             "input": {}, "ctx": {"error": exc.msg}},
        ]  # fmt: skip
        raise HTTPException(422, detail) from None


# -- the app's ----------------------------------------------------------------------------------
async def run_async(app: Any, request: Any, answer: Any) -> Any:
    """``App._run_async``: await a handler's answer, then run the response hooks."""
    try:
        response = app._as_response(await answer)
    except Exception as exc:
        response = app._error(request, exc)
    return app._finish(request, response, app._after_all)


async def iterate_content(content: Any) -> AsyncIterator[bytes]:
    """``StreamingResponse.iterate``: its content (sync or async iterable) as bytes."""
    if hasattr(content, "__aiter__"):
        async for chunk in content:
            yield chunk.encode() if isinstance(chunk, str) else chunk
    else:
        for chunk in content:
            yield chunk.encode() if isinstance(chunk, str) else chunk


async def close_content(agen: Any, content: Any) -> None:
    """``StreamingResponse.close_iterator``: release the producer (finally blocks run)
    whether or not it was exhausted."""
    if agen is not None:
        await agen.aclose()
    if hasattr(content, "aclose"):
        await content.aclose()
    elif hasattr(content, "close"):
        content.close()


# -- the gzip middleware's ------------------------------------------------------------------------
async def gzip_stream(content: Any, level: int) -> AsyncIterator[bytes]:
    """A streaming body gzipped chunk by chunk, each sync-flushed so it is readable at once."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip framing
    flush = zlib.Z_SYNC_FLUSH
    try:
        if hasattr(content, "__aiter__"):
            async for chunk in content:
                data = chunk.encode() if isinstance(chunk, str) else chunk
                yield compressor.compress(data) + compressor.flush(flush)
        else:
            for chunk in content:
                data = chunk.encode() if isinstance(chunk, str) else chunk
                yield compressor.compress(data) + compressor.flush(flush)
        yield compressor.flush()
    finally:  # the producer's own cleanup runs, however the stream ends
        if hasattr(content, "aclose"):
            await content.aclose()
        elif hasattr(content, "close"):
            content.close()


async def gzip_body(body: bytes, level: int) -> AsyncIterator[bytes]:
    """A large body gzipped in 64 KiB steps, letting other connections run between them."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    view = memoryview(body)
    for start in range(0, len(body), 65536):
        yield compressor.compress(view[start : start + 65536])
        await asyncio.sleep(0)
    yield compressor.flush()

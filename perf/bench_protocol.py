"""Benchmark the request path of the connection protocol: ``--impl c`` or ``--impl py``.

Both twins in one suite (``protocol_health[c]``, ``protocol_health[py]``, ...)::

    python perf/bench_protocol.py -o /tmp/protocol.json

One twin per file, to compare::

    python perf/bench_protocol.py --impl c -o /tmp/protocol_c.json
    python perf/bench_protocol.py --impl py -o /tmp/protocol_py.json
    python -m pyperf compare_to /tmp/protocol_py.json /tmp/protocol_c.json

A twin here is the pair ``llmstruct._ext._protocol_<impl>`` (``HttpProtocol`` and
its ``Cycle``) and ``_request_<impl>`` (``Request``), as the server runs them. Each
benchmark feeds whole keep-alive requests to ``HttpProtocol.data_received`` on a
transport that only counts writes (no socket, no event loop turn): the compiled
httptools driver parses, the production middleware chain of ``bench_http.py``
runs (request id, metrics, CORS, rate limit, auth, gzip), the handler answers.
``protocol_health`` is the public health route, ``protocol_lookup`` the
key-checked demo lookup. The time is the server's whole per-request CPU work
except the socket calls; ``instructions.py`` counts the same path's instructions.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pyperf
from twins import twin_runner, twins

# Bench this checkout and its in-place build, whatever llmstruct is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_http import HEALTH, KEY, LOOKUP, add_demo_route  # noqa: E402
from instructions import CountingTransport  # noqa: E402

from llmstruct.server.limits import Limits  # noqa: E402
from llmstruct.server.listener import driver_class  # noqa: E402
from llmstruct.server.protocol import ServerState  # noqa: E402
from llmstruct.server.system import build_app  # noqa: E402

REQUESTS = {
    "health": f"GET {HEALTH} HTTP/1.1\r\nHost: localhost:8080\r\n\r\n".encode(),
    "lookup": (
        f"GET {LOOKUP} HTTP/1.1\r\nHost: localhost:8080\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    ).encode(),
}


def connection(protocol_module, request_module, loop: asyncio.AbstractEventLoop):
    """One HttpProtocol of the given twins on a counting transport, and the transport."""
    app = build_app(KEY, rate_limit=1e9, rate_burst=10**9, access_log=False)
    add_demo_route(app)
    app.request_class = request_module.Request
    state = ServerState(
        app,
        Limits(max_keepalive_requests=10**9),
        driver_class("httptools"),
        protocol_module.HttpProtocol,
    )
    state.loop = loop
    app.on_server(state)
    protocol = protocol_module.HttpProtocol(state)
    transport = CountingTransport()
    protocol.connection_made(transport)
    return protocol, transport


def time_requests(loops: int, protocol_module, request_module, request: bytes) -> float:
    loop = asyncio.new_event_loop()
    try:
        protocol, transport = connection(protocol_module, request_module, loop)
        data_received = protocol.data_received
        t0 = pyperf.perf_counter()
        for _ in range(loops):
            data_received(request)
        elapsed = pyperf.perf_counter() - t0
    finally:
        loop.close()
    if transport.writes != loops:
        raise RuntimeError(f"{transport.writes} responses to {loops} requests")
    return elapsed


def main() -> None:
    runner, args = twin_runner("protocol")
    for protocol_module, suffix in twins("protocol", args):
        request_module = next(module for module, other in twins("request", args) if other == suffix)
        for name, request in REQUESTS.items():
            runner.bench_time_func(
                f"protocol_{name}{suffix}", time_requests, protocol_module, request_module, request
            )


if __name__ == "__main__":
    main()

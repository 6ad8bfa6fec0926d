"""CPU instructions per request through the server's whole Python path, without sockets.

On a shared machine the time a request takes moves with the neighbours' load;
the number of instructions it executes does not. This script feeds whole
requests to ``HttpProtocol.data_received`` (the compiled or pure httptools
driver, the production middleware chain as ``bench_http.py`` configures it, a
transport that only counts writes) under valgrind, twice with different request
counts, and reports the difference per request: start-up and warm-up cancel
out. Use it to compare two versions of the request path exactly::

    python perf/instructions.py                       # health and lookup
    python perf/instructions.py --endpoint lookup --drop RequestId,Metrics
    LLMSTRUCT_NO_EXTENSIONS=1 python perf/instructions.py   # the pure twins

``--drop`` leaves middleware (by class name) out of the chain, to see what each
costs. Needs ``valgrind`` (Debian package). Instructions are not time (cache
misses are not counted), but fewer is faster on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

from bench_http import HEALTH, KEY, LOOKUP, add_demo_route  # noqa: E402

REQUESTS = {
    "health": f"GET {HEALTH} HTTP/1.1\r\nHost: localhost:8080\r\n\r\n".encode(),
    "lookup": (
        f"GET {LOOKUP} HTTP/1.1\r\nHost: localhost:8080\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    ).encode(),
}
WARMUP = 200
SMALL, LARGE = 1_000, 3_000


class CountingTransport:
    """What HttpProtocol needs of a transport; writes are counted and dropped."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def feed(endpoint: str, count: int, drop: set[str]) -> None:
    from llmstruct.server.limits import Limits
    from llmstruct.server.listener import driver_class
    from llmstruct.server.protocol import HttpProtocol, ServerState
    from llmstruct.server.system import build_app

    app = build_app(KEY, rate_limit=1e9, rate_burst=10**9, access_log=False)
    if drop:
        app.middleware = [m for m in app.middleware if type(m).__name__ not in drop]
        app._build_chain()

    add_demo_route(app)
    state = ServerState(app, Limits(max_keepalive_requests=10**9), driver_class("httptools"))
    state.loop = asyncio.get_running_loop()
    app.on_server(state)
    protocol = HttpProtocol(state)
    transport = CountingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    request = REQUESTS[endpoint]
    for _ in range(WARMUP + count):
        protocol.data_received(request)
    if transport.writes != WARMUP + count:
        raise SystemExit(f"{transport.writes} responses to {WARMUP + count} requests")


def instructions(endpoint: str, count: int, drop: str, valgrind: str) -> int:
    command = [valgrind, "--tool=lackey", "--basic-counts=yes", sys.executable, __file__,
               "--inner", str(count), "--endpoint", endpoint, "--drop", drop]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"guest instrs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", choices=(*REQUESTS, "all"), default="all")
    parser.add_argument("--drop", default="", help="middleware class names to leave out, a,b")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    drop = {name for name in args.drop.split(",") if name}
    if args.inner is not None:
        try:  # the server's default loop (--loop auto) when installed
            import uvloop
        except ImportError:
            asyncio.run(feed(args.endpoint, args.inner, drop))
        else:
            uvloop.run(feed(args.endpoint, args.inner, drop))
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    twins = "pure" if os.environ.get("LLMSTRUCT_NO_EXTENSIONS") else "compiled if built"
    print(f"twins: {twins}; dropped: {', '.join(sorted(drop)) or 'none'}")
    for endpoint in REQUESTS if args.endpoint == "all" else (args.endpoint,):
        small = instructions(endpoint, SMALL, args.drop, valgrind)
        large = instructions(endpoint, LARGE, args.drop, valgrind)
        print(f"{endpoint}: {(large - small) / (LARGE - SMALL):,.0f} instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the httptools request driver: ``--impl c`` or ``--impl py``.

Both twins in one suite (``llhttp_feed[c]``, ``llhttp_feed[py]``)::

    python perf/bench_llhttp.py -o /tmp/llhttp.json

One twin per file, to compare::

    python perf/bench_llhttp.py --impl c -o /tmp/llhttp_c.json
    python perf/bench_llhttp.py --impl py -o /tmp/llhttp_py.json
    python -m pyperf compare_to /tmp/llhttp_py.json /tmp/llhttp_c.json

Inputs (fixed seed, built before timing): 2,000 requests as clients send them to
the API, each a whole read -- a request line to one of the API's paths, a Host,
then 1 to 6 of User-Agent, Accept, Accept-Encoding, Authorization, X-Request-ID,
Content-Type, in a shuffled order; 20 % are POSTs with a JSON body of 20 to 400
bytes. ``llhttp_feed`` times ``HttpToolsDriver.feed`` per request on one
keep-alive connection (llhttp, the callbacks, the head policy) into a sink that
only counts, i.e. the driver's share of a request, not the server's.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pyperf
from twins import twin_runner, twins

# Bench this checkout and its in-place build, whatever llmstruct is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmstruct.server.limits import Limits  # noqa: E402

SEED = 20261128
N = 2_000
OPTIONAL = [
    b"User-Agent: python-httpx/0.27.0",
    b"Accept: application/json",
    b"Accept-Encoding: gzip, deflate",
    b"Authorization: Bearer 0123456789abcdef0123456789abcdef",
    b"X-Request-ID: client-7f3a9c",
]
TARGETS = [b"/api/v1/system/health", b"/api/v1/tasks?status=todo&limit=20",
           b"/api/v1/tasks/9f1c2b7e-2d4a-4c1e-9a53-0c6f4b1d2e3f",
           b"/api/v1/project/context/FOCUSED?query=router&budget=4000"]  # fmt: skip


def build_requests(rng: random.Random) -> list[bytes]:
    requests = []
    for _ in range(N):
        headers = rng.sample(OPTIONAL, rng.randint(1, len(OPTIONAL)))
        body = b""
        if rng.random() < 0.2:
            body = b'{"title": "%s"}' % (b"x" * rng.randint(8, 388))
            headers += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
            line = b"POST /api/v1/tasks HTTP/1.1"
        else:
            line = b"GET %s HTTP/1.1" % rng.choice(TARGETS)
        rng.shuffle(headers)
        requests.append(b"\r\n".join([line, b"Host: 127.0.0.1:8000", *headers]) + b"\r\n\r\n"
                        + body)  # fmt: skip
    return requests


class CountingSink:
    """What the protocol is to the driver, doing nothing but count."""

    def __init__(self) -> None:
        self.requests = 0

    def on_request(self, head: object) -> None:
        self.requests += 1

    def on_body(self, data: bytes) -> None:
        pass

    def on_end(self) -> None:
        pass


def time_feed(loops: int, module, requests: list[bytes]) -> float:
    sink = CountingSink()
    driver = module.HttpToolsDriver(sink, Limits())
    feed = driver.feed
    elapsed = 0.0
    for _ in range(loops):
        t0 = pyperf.perf_counter()
        for request in requests:
            feed(request)
        elapsed += pyperf.perf_counter() - t0
    if sink.requests != loops * len(requests):
        raise RuntimeError(f"the driver parsed {sink.requests} of {loops * len(requests)}")
    return elapsed


def main() -> None:
    runner, args = twin_runner("llhttp")
    requests = build_requests(random.Random(SEED))
    for module, suffix in twins("llhttp", args):
        runner.bench_time_func(f"llhttp_feed{suffix}", time_feed, module, requests,
                               inner_loops=N)  # fmt: skip


if __name__ == "__main__":
    main()

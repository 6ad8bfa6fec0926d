"""Benchmark the per-request head work of the server: ``--impl c`` or ``--impl py``.

Both twins in one suite (``httphead_inspect[c]``, ``httphead_inspect[py]``, ...)::

    python perf/bench_httphead.py -o /tmp/httphead.json

One twin per file, to compare::

    python perf/bench_httphead.py --impl c -o /tmp/httphead_c.json
    python perf/bench_httphead.py --impl py -o /tmp/httphead_py.json
    python -m pyperf compare_to /tmp/httphead_py.json /tmp/httphead_c.json

Inputs (fixed seed, built before timing): 2,000 request heads as clients send
them to the API -- a Host, then 1 to 8 of User-Agent, Accept, Accept-Encoding,
Authorization, Content-Type, Content-Length, Connection, X-Request-ID, in a
shuffled order, 20 % with a body, 5 % with ``Connection: close`` -- and the
response heads the server writes for them: status 200 (80 %), 201, 204, 304,
401, 404, 422, with content type, request id and sometimes Vary / ETag /
Content-Encoding, keep-alive or close. ``httphead_inspect`` times
``inspect_head``, ``httphead_response`` ``response_head``, ``httphead_split``
``split_target``; times are per call.
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

SEED = 20261127
N = 2_000
LIMITS = Limits()
OPTIONAL = [
    (b"user-agent", b"python-httpx/0.27.0"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"authorization", b"Bearer 0123456789abcdef0123456789abcdef"),
    (b"content-type", b"application/json"),
    (b"x-request-id", b"client-7f3a9c"),
]
TARGETS = [b"/api/v1/system/health", b"/api/v1/tasks?status=todo&limit=20",
           b"/api/v1/tasks/9f1c2b7e", b"/api/v1/project/context/focused?query=router&budget=4000",
           b"/api/v1/project/struct"]  # fmt: skip
STATUSES = [200] * 16 + [201, 204, 304, 401, 404, 422]


def build_heads(rng: random.Random) -> list[tuple[str, bytes, str, list[tuple[bytes, bytes]]]]:
    heads = []
    for _ in range(N):
        headers = rng.sample(OPTIONAL, rng.randint(1, len(OPTIONAL)))
        method = "GET"
        if rng.random() < 0.2:
            method = "POST"
            headers.append((b"content-length", str(rng.randint(2, 4000)).encode()))
        if rng.random() < 0.05:
            headers.append((b"connection", b"close"))
        rng.shuffle(headers)
        headers.insert(0, (b"host", b"127.0.0.1:8000"))
        heads.append((method, rng.choice(TARGETS), "1.1", headers))
    return heads


def build_responses(rng: random.Random) -> list[tuple[int, list[tuple[bytes, bytes]], int, bool]]:
    responses = []
    for index in range(N):
        headers = [(b"content-type", b"application/json"),
                   (b"x-request-id", b"5e1f0a2b-%x" % index)]  # fmt: skip
        if rng.random() < 0.2:
            headers += [(b"vary", b"Accept-Encoding"), (b"content-encoding", b"gzip")]
        if rng.random() < 0.1:
            headers.append((b"etag", b'W/"a1b2c3d4e5f6"'))
        responses.append((rng.choice(STATUSES), headers, rng.randint(2, 60000),
                          rng.random() > 0.05))  # fmt: skip
    return responses


def time_inspect(loops: int, module, heads) -> float:
    inspect_head = module.inspect_head
    elapsed = 0.0
    for _ in range(loops):
        t0 = pyperf.perf_counter()
        for method, target, version, headers in heads:
            inspect_head(method, target, version, headers, LIMITS)
        elapsed += pyperf.perf_counter() - t0
    return elapsed


def time_response(loops: int, module, responses) -> float:
    response_head = module.response_head
    elapsed = 0.0
    for _ in range(loops):
        t0 = pyperf.perf_counter()
        for status, headers, length, keep_alive in responses:
            response_head(status, headers, length, keep_alive)
        elapsed += pyperf.perf_counter() - t0
    return elapsed


def time_split(loops: int, module, heads) -> float:
    split_target = module.split_target
    targets = [target for _, target, _, _ in heads]
    elapsed = 0.0
    for _ in range(loops):
        t0 = pyperf.perf_counter()
        for target in targets:
            split_target(target)
        elapsed += pyperf.perf_counter() - t0
    return elapsed


def main() -> None:
    runner, args = twin_runner("httphead")
    rng = random.Random(SEED)
    heads = build_heads(rng)
    responses = build_responses(rng)
    for module, suffix in twins("httphead", args):
        runner.bench_time_func(f"httphead_inspect{suffix}", time_inspect, module, heads,
                               inner_loops=N)  # fmt: skip
        runner.bench_time_func(f"httphead_response{suffix}", time_response, module, responses,
                               inner_loops=N)  # fmt: skip
        runner.bench_time_func(f"httphead_split{suffix}", time_split, module, heads,
                               inner_loops=N)  # fmt: skip


if __name__ == "__main__":
    main()

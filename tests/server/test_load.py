"""A bounded load test on loopback: idle and slowloris connections do not starve real clients.

The server runs as its own process (``serve_app.py``, one worker, the backend
under test) so its memory can be read from ``/proc/<pid>/status``. Three rounds,
each: 2,000 idle connections that never send a byte, 200 clients trickling a
request head one byte at a time, and meanwhile a normal client whose requests
must all get 200. Memory must stay flat: bounded per connection during a round,
and the last round adding far less than a round's load needs (no leak); the
exact check that no server object outlives its connection is the second test.
Everything is on 127.0.0.1, counts are fixed, and each phase has a deadline.
"""

from __future__ import annotations

import gc
import re
import resource
import threading
import time
from pathlib import Path

import pytest

from tests.server.helpers import HANG, Reader, connect, serve_backend, wait_for

IDLE = 2000
SLOW = 200
NORMAL_SECONDS = 2.0
ROUNDS = 3
SLOW_HEAD = b"GET /test/pid HTTP/1.1\r\nHost: slow\r\nX-Trickle: " + b"z" * 4000
NEEDED_FDS = IDLE + SLOW + 200


@pytest.fixture
def fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NEEDED_FDS:
        pytest.skip(f"the hard RLIMIT_NOFILE ({hard}) is below the {NEEDED_FDS} sockets needed")
    if soft != resource.RLIM_INFINITY and soft < NEEDED_FDS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NEEDED_FDS, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def open_connections(port: int) -> int:
    with connect(port) as sock:
        sock.sendall(b"GET /api/v1/system/metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        text = Reader(sock).response().body.decode()
    return int(re.search(r"^llmstruct_http_connections_open (\d+)$", text, re.M).group(1))


def normal_client(port: int, statuses: list[int], stop: threading.Event) -> None:
    """Keep-alive requests, one after another, reconnecting when the server ends a connection."""
    while not stop.is_set():
        with connect(port) as sock:
            reader = Reader(sock)
            while not stop.is_set():
                sock.sendall(b"GET /api/v1/system/health HTTP/1.1\r\nHost: normal\r\n\r\n")
                response = reader.response()
                statuses.append(response.status)
                if response.header("connection") == "close":
                    break  # max_keepalive_requests reached: a new connection, as a client would


def one_round(port: int, pid: int) -> tuple[list[int], int, int]:
    """One round of load: the normal client's statuses, the peak open count, the peak RSS."""
    idle = [connect(port) for _ in range(IDLE)]
    slow = [connect(port) for _ in range(SLOW)]
    statuses: list[int] = []
    stop = threading.Event()
    client = threading.Thread(target=normal_client, args=(port, statuses, stop))
    try:
        client.start()
        deadline = time.monotonic() + NORMAL_SECONDS
        position = 0
        while time.monotonic() < deadline:  # every slow client sends one more byte
            for sock in slow:
                sock.send(SLOW_HEAD[position : position + 1])
            position += 1
            time.sleep(0.05)
        peak = open_connections(port)
        peak_rss = rss_kib(pid)
        stop.set()
        client.join(HANG)
    finally:
        stop.set()
        for sock in idle + slow:
            sock.close()
    return statuses, peak, peak_rss


def test_idle_and_slow_clients_do_not_starve_a_normal_client(served, fd_limit, backend):
    http, env = serve_backend(backend)
    server = served(
        "--no-auth", "--http", http,
        env={"LLMSTRUCT_MAX_CONNECTIONS": "4096", "LLMSTRUCT_HEADER_TIMEOUT": "60",
             "LLMSTRUCT_ACCESS_LOG": "off", **env},
    ).wait_serving()  # fmt: skip
    pid = server.process.pid
    for _ in range(50):  # warm up: imports, caches, first allocations
        open_connections(server.port)
    baseline = rss_kib(pid)
    peaks, after = [], []
    for _ in range(ROUNDS):
        statuses, peak, peak_rss = one_round(server.port, pid)
        assert peak >= IDLE + SLOW  # the load was really there
        assert len(statuses) > 10 and set(statuses) == {200}
        assert peak_rss - baseline < (IDLE + SLOW) * 16  # under 16 KiB per open connection
        deadline = time.monotonic() + HANG
        while open_connections(server.port) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        peaks.append(peak_rss)
        after.append(rss_kib(pid))
    print(f"\nRSS KiB ({backend}): baseline {baseline}, peaks {peaks}, after each round {after}")
    # Flat: the allocator keeps freed pages and fragments a little (RSS never falls
    # back and creeps by about a MiB a round while the server's objects all go, see
    # the next test), so the check is that two more rounds add well under what the
    # load itself takes -- a leak of 3 KiB per connection would add more.
    load = peaks[0] - baseline
    assert after[-1] - after[0] < 1.5 * load, f"RSS keeps growing: {after} (a round: {load} KiB)"
    assert server.terminate() == 0


def test_no_server_object_outlives_its_connection(serve, fd_limit):
    """The exact leak check behind the RSS one: count the server's objects after a load."""
    server = serve(max_connections=4096, header_timeout=60)
    kinds = ("HttpProtocol", "Cycle", "Request", "H11Driver", "HttpToolsDriver", "Response")

    def live() -> dict[str, int]:
        gc.collect()
        counts = dict.fromkeys(kinds, 0)
        for obj in gc.get_objects():
            name = type(obj).__name__
            if name in counts:
                counts[name] += 1
        return counts

    idle = [connect(server.port) for _ in range(300)]
    slow = [connect(server.port) for _ in range(30)]
    for sock in slow:
        sock.send(SLOW_HEAD[:20])
    with connect(server.port) as sock:
        reader = Reader(sock)
        for _ in range(50):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: n\r\n\r\n")
            assert reader.response().status == 200
    wait_for(lambda: server.server.open_connections >= 330, "the connections to be accepted")
    assert live()["HttpProtocol"] >= 330
    for sock in idle + slow:
        sock.close()
    wait_for(lambda: server.server.open_connections == 0, "every connection to close")
    assert live() == dict.fromkeys(kinds, 0)

"""No lost writes: ``llmstruct serve --workers 4`` creating tasks from many clients at once.

The server is ``python -m llmstruct serve --root DIR --workers 4 --port 0`` as a real
process (its own process group, key from ``LLMSTRUCT_API_KEY``, rate limit off);
``--port 0`` lets the supervisor pick a free port, which it prints. Writer threads
create tasks (``POST /api/v1/tasks``), on connections they renew every few requests
so the kernel spreads them over the workers (SO_REUSEPORT), while a reader lists tasks
and reads back the latest acknowledged one by id -- a 201 means committed, so any worker
must see it at once. Every acknowledged (201) task is recorded; afterwards each must
be there, by id and in the list. The second test SIGKILLs a worker in the middle of
the writes and then also opens the database with ``sqlite3``: it must pass
``PRAGMA integrity_check`` and hold every acknowledged task. Nothing asserts on time;
the durations only bound the test (about 25 s for both).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import llmstruct

WORKERS = 4
WRITERS = 4
RECONNECT_EVERY = 10
HANG = 30.0  # an upper bound on one wait, never asserted on
TASKS_DB = Path(".llmstruct") / "tasks.db"


class ServeProcess:
    """``llmstruct serve`` with workers on a free loopback port; stderr goes to a file."""

    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        self.key = secrets.token_urlsafe(24)
        self.log = root.parent / "serve.log"
        parent = str(Path(llmstruct.__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        env = {
            **os.environ,
            "PYTHONPATH": parent + (os.pathsep + path if path else ""),
            "XDG_CONFIG_HOME": str(root.parent / "xdg"),
            "LLMSTRUCT_API_KEY": self.key,
            "LLMSTRUCT_RATE_LIMIT": "0",  # many requests from one client address are the point
            "LLMSTRUCT_ACCESS_LOG": "false",
        }
        env.pop("NOTIFY_SOCKET", None)
        command = [
            sys.executable, "-m", "llmstruct", "serve",
            "--root", str(root), "--workers", str(workers), "--port", "0",
        ]  # fmt: skip
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,  # its own group: close() ends the workers too
            )  # fmt: skip
        self.port = self._wait_serving()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"X-API-Key": self.key}

    def _wait_serving(self) -> int:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", self.log.read_text())
            if found:
                return int(found.group(1))
            time.sleep(0.05)
        self.close()
        pytest.fail(f"serve did not start:\n{self.log.read_text()}")

    def workers(self) -> set[int]:
        """Pids of the supervisor's children (its workers), from ``/proc``."""
        children = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # gone meanwhile
                continue
            # pid (comm) state ppid ...: comm may hold spaces and parentheses
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[1]) == self.process.pid:
                children.add(int(entry))
        return children

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(HANG)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(HANG)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # workers of a failed test, if any
        except ProcessLookupError:
            pass


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[], ServeProcess]]:
    started: list[ServeProcess] = []

    def start() -> ServeProcess:
        root = tmp_path / "project"
        root.mkdir()
        started.append(ServeProcess(root, WORKERS))
        return started[-1]

    yield start
    for server in started:
        server.close()


# -- the load --------------------------------------------------------------------------------------
class Ledger:
    """What the clients sent and what the server acknowledged, shared by their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: dict[str, str] = {}  # task id -> title
        self.latest: str | None = None
        self.attempted: set[str] = set()
        self.failures: Counter[str] = Counter()  # of writes not acknowledged, by cause
        self.anomalies: list[str] = []  # answers no correct server gives

    def attempt(self, title: str) -> None:
        with self.lock:
            self.attempted.add(title)

    def ack(self, task_id: str, title: str) -> None:
        with self.lock:
            if task_id in self.acknowledged:
                self.anomalies.append(f"id {task_id} acknowledged twice")
            self.acknowledged[task_id] = title
            self.latest = task_id

    def fail(self, cause: str) -> None:
        with self.lock:
            self.failures[cause] += 1


def new_connections(server: ServeProcess) -> httpx.Client:
    """A client opening a new connection per request, so every worker gets some."""
    return httpx.Client(
        base_url=server.url, headers=server.headers, timeout=HANG,
        limits=httpx.Limits(max_keepalive_connections=0),
    )  # fmt: skip


def write(server: ServeProcess, ledger: Ledger, writer: int, stop: threading.Event) -> None:
    """Create tasks until ``stop``. A connection carries RECONNECT_EVERY requests, then
    closes: the writers move over all the workers, yet each is nearly always inside a
    request on some worker, so a worker killed is likely killed in the middle of one."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=HANG) as client:
        number = 0
        while not stop.is_set():
            title = f"writer {writer} task {number}"
            number += 1
            ledger.attempt(title)
            last = number % RECONNECT_EVERY == 0
            try:
                response = client.post(
                    "/api/v1/tasks",
                    json={"title": title, "tags": [f"writer-{writer}"]},
                    headers={"Connection": "close"} if last else None,
                )
            except httpx.TransportError as exc:  # e.g. on the worker that was killed
                ledger.fail(type(exc).__name__)
                continue
            if response.status_code != 201:
                ledger.fail(f"{response.status_code} {response.text[:200]}")
                continue
            task = response.json()
            if task["title"] != title:
                ledger.anomalies.append(f"sent {title!r}, acknowledged {task!r}")
            ledger.ack(task["id"], title)


def read(server: ServeProcess, ledger: Ledger, stop: threading.Event) -> int:
    """List tasks and read the latest acknowledged one back until ``stop``; reads made."""
    reads = 0
    with new_connections(server) as client:
        while not stop.is_set():
            with ledger.lock:
                latest = ledger.latest
                title = ledger.acknowledged.get(latest) if latest else None
            try:
                listed = client.get("/api/v1/tasks", params={"limit": 20})
                got = client.get(f"/api/v1/tasks/{latest}") if latest else None
            except httpx.TransportError:
                continue
            reads += 1
            if listed.status_code != 200 or not isinstance(listed.json(), list):
                ledger.anomalies.append(f"list answered {listed.status_code} {listed.text[:200]}")
            if got is not None and (got.status_code != 200 or got.json()["title"] != title):
                ledger.anomalies.append(f"acknowledged {latest} read back as {got.text[:200]}")
    return reads


def run_load(
    server: ServeProcess,
    ledger: Ledger,
    seconds: float,
    during: Callable[[], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> int:
    """Writers and a reader for ``seconds`` (and then until ``until()``, bounded by HANG);
    ``during()`` runs at half time. The number of reads made."""
    stop = threading.Event()
    with ThreadPoolExecutor(WRITERS + 1) as pool:
        writers = [pool.submit(write, server, ledger, n, stop) for n in range(WRITERS)]
        reader = pool.submit(read, server, ledger, stop)
        try:
            time.sleep(seconds / 2)
            if during is not None:
                during()
            time.sleep(seconds / 2)
            deadline = time.monotonic() + HANG
            while until is not None and not until() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
        for future in writers:
            future.result()  # a writer's own exception fails the test here
        return reader.result()


def all_listed(server: ServeProcess) -> dict[str, str]:
    """Every task of the list endpoint, page by page: id -> title."""
    tasks: dict[str, str] = {}
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=HANG) as client:
        while True:
            page = client.get("/api/v1/tasks", params={"limit": 1000, "offset": len(tasks)})
            assert page.status_code == 200, page.text
            tasks.update((task["id"], task["title"]) for task in page.json())
            if len(page.json()) < 1000:
                return tasks


def assert_every_acknowledged_task_is_there(server: ServeProcess, ledger: Ledger) -> None:
    listed = all_listed(server)
    assert ledger.acknowledged.items() <= listed.items()
    assert set(listed.values()) <= ledger.attempted  # nothing the clients did not send
    assert len(set(listed.values())) == len(listed)  # and nothing stored twice
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=HANG) as client:
        for task_id, title in ledger.acknowledged.items():
            response = client.get(f"/api/v1/tasks/{task_id}")
            assert (response.status_code, response.json()["title"]) == (200, title), task_id


# -- the tests -------------------------------------------------------------------------------------
def test_no_acknowledged_task_is_lost_with_four_workers_writing(serve) -> None:
    server = serve()
    assert len(server.workers()) == WORKERS
    ledger = Ledger()
    reads = run_load(server, ledger, seconds=8.0)
    assert ledger.anomalies == []
    assert ledger.failures == {}  # every write was acknowledged
    assert len(ledger.acknowledged) == len(ledger.attempted) > WRITERS
    assert reads > 0
    assert_every_acknowledged_task_is_there(server, ledger)
    assert server.terminate() == 0


def test_a_worker_killed_while_writing_loses_no_acknowledged_task(serve) -> None:
    server = serve()
    workers = server.workers()
    assert len(workers) == WORKERS
    ledger = Ledger()
    killed: list[tuple[int, int]] = []  # (pid, tasks acknowledged before the kill)

    def kill_a_worker() -> None:
        with ledger.lock:
            before = len(ledger.acknowledged)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        killed.append((victim, before))

    def written_after_the_kill() -> bool:
        with ledger.lock:
            return len(ledger.acknowledged) > killed[0][1]

    run_load(server, ledger, seconds=6.0, during=kill_a_worker, until=written_after_the_kill)
    ((victim, before),) = killed
    assert 0 < before < len(ledger.acknowledged)  # the kill came in the middle of the writes
    assert ledger.anomalies == []
    assert_every_acknowledged_task_is_there(server, ledger)
    assert victim not in server.workers()
    assert server.terminate() == 0

    db = sqlite3.connect(server.root / TASKS_DB)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = dict(db.execute("SELECT id, title FROM tasks").fetchall())
    finally:
        db.close()
    assert ledger.acknowledged.items() <= stored.items()

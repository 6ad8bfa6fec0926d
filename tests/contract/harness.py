"""The contract suite's machinery: starting the three servers, normalising answers,
running a scenario once on all three (see ``conftest.py`` for the design)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fakellm import FakeLLM

import llmstruct

HANG = 90.0  # an upper bound on one wait, never asserted on
KEY = "contract-key-0123456789abcdef"
SERVERS = ("custom", "fastapi-inprocess", "fastapi-cli")
# Short LLM timeouts: the "backend too slow" case costs one READ_TIMEOUT. The fake
# answers at once otherwise (it runs in this process, idle while a test waits).
READ_TIMEOUT = 4.0
CONNECT_TIMEOUT = 4.0
FILES = {
    "pyproject.toml": '[project]\nname = "shop"\nversion = "1.2.3"\ndescription = "A shop."\n',
    "shop/cart.py": (
        'def total(items):\n    """Add up the prices of the items."""\n    return sum(items)\n'
    ),
    "shop/pricing.py": (
        "from shop.cart import total\n\n\n"
        "def discounted(items, rate):\n    return total(items) * (1 - rate)\n"
    ),
    "shop/util.js": "export function fmt(x) { return String(x); }\n",
    "shop/i18n.py": 'GREETING = "Grüß Gott, 世界"\n\n\ndef grüße():\n    return GREETING\n',
}
# What differs between two servers by nature: timestamps, ids, timings, uptime.
VOLATILE = frozenset(
    ("timestamp", "scan_id", "created_at", "updated_at", "last_updated", "id",
     "processing_time", "uptime_s", "generated_at")
)  # fmt: skip
NDJSON = "application/x-ndjson"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
Observation = dict[str, Any]
Scenario = Callable[["Server"], Any]


# -- normalising an answer -------------------------------------------------------------------------
def stable(value: Any) -> Any:
    """``value`` without the fields that differ between two servers by nature."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def _ndjson(text: str) -> Any:
    """A scan stream: the progress lines (files finish in any order, so sorted; each
    ``current`` only checked to count 1..N) and the last line."""
    lines = [json.loads(line) for line in text.splitlines()]
    progress, last = lines[:-1], lines[-1] if lines else None
    counts = [line.get("current") for line in progress] == list(range(1, len(progress) + 1))
    ordered = sorted(({**line, "current": 0} for line in progress), key=lambda x: str(x))
    return {"counts_up": counts, "progress": stable(ordered), "last": stable(last)}


def _prometheus(text: str) -> Any:
    """The metric families (name and type) and the label names of each sample, not
    values. ``llmstruct_*`` families are the custom server's own additions (refusals,
    connections, worker info) and are left out: the contract is the sheet's series."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    samples: set[tuple[str, tuple[str, ...]]] = set()
    for name, labels in re.findall(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$", text, re.M):
        samples.add((name, tuple(sorted(re.findall(r'(\w+)="', labels or "")))))
    own = "llmstruct_"
    return {
        "types": {k: v for k, v in types.items() if not k.startswith(own)},
        "samples": sorted(s for s in samples if not s[0].startswith(own)),
    }


def etag_shape(value: str | None) -> str | None:
    """An ETag with its opaque part replaced: ``W/"<tag>"`` or ``"<tag>"``."""
    if value is None:
        return None
    return re.sub(r'"[^"]*"', '"<tag>"', value)


def normalise(response: httpx.Response, headers: tuple[str, ...] = ()) -> Observation:
    """Status, content type, body without volatile fields, and the named headers."""
    content_type = response.headers.get("content-type")
    kind = (content_type or "").split(";")[0].strip()
    body: Any
    if not response.content:
        body = None
    elif kind == NDJSON:
        body = _ndjson(response.text)
    elif kind == "application/json":
        body = stable(response.json())
    elif response.request.url.path.endswith("/metrics") and response.status_code == 200:
        body = _prometheus(response.text)
    else:
        body = response.text
    seen: Observation = {"status": response.status_code, "content-type": content_type, "body": body}
    for name in headers:
        value = response.headers.get(name)
        seen[name] = etag_shape(value) if name == "etag" else value
    return seen


# -- the servers -----------------------------------------------------------------------------------
@dataclass
class Server:
    """One running server and a client for it; every request carries the key unless
    ``key=None`` (or another key) is given."""

    name: str
    root: Path
    process: subprocess.Popen
    port: int
    log: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            timeout=HANG,
            headers={"Accept-Encoding": "identity"},  # gzip only where a test asks
        )

    def call(self, method: str, path: str, *, key: str | None = KEY, **options: Any):
        headers = dict(options.pop("headers", None) or {})
        if key is not None:
            headers.setdefault("X-API-Key", key)
        return self.client.request(method, path, headers=headers, **options)

    def observe(
        self, method: str, path: str, *, show: tuple[str, ...] = (), **options: Any
    ) -> Observation:
        """``call``, normalised; ``show`` names headers to compare too."""
        response = self.call(method, path, **options)
        return {"request": f"{method} {UUID.sub('<id>', path)}", **normalise(response, show)}

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(HANG)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _command(name: str, root: Path) -> list[str]:
    python = [sys.executable, "-m"]
    if name == "custom":
        return [*python, "llmstruct", "serve", "--root", str(root), "--port", "0"]
    bridge = name.removeprefix("fastapi-")
    return [*python, "llmstruct.migration.serve_fastapi", "--root", str(root), "--port", "0",
            "--bridge", bridge, "--api-key", KEY, "--log-level", "warning"]  # fmt: skip


def _spawn(name: str, base: Path, env: dict[str, str]) -> tuple[str, Path, subprocess.Popen, Path]:
    root = base / name / "project"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    log = base / name / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            _command(name, root), stdin=subprocess.DEVNULL, stdout=sink,
            stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    return name, root, process, log


def _wait_serving(name: str, root: Path, process: subprocess.Popen, log: Path) -> Server:
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        found = re.search(r"serving (?:FastAPI )?on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return Server(name, root, process, int(found.group(1)), log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"{name} did not start:\n{log.read_text()}")


class LLM:
    """The fake LLM, which can be taken down and brought back on the same port."""

    def __init__(self) -> None:
        self.fake = FakeLLM().start()
        self.port = self.fake.port

    @property
    def url(self) -> str:
        return self.fake.url

    @contextlib.contextmanager
    def mode(self, mode: str) -> Iterator[None]:
        self.fake.mode = mode
        try:
            yield
        finally:
            self.fake.mode = "echo"

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """Nothing listens on the backend's port (connections are refused) meanwhile."""
        self.fake.stop()
        try:
            yield
        finally:
            self.fake = FakeLLM(port=self.port).start()

    def stop(self) -> None:
        self.fake.stop()


def start_servers(base: Path, llm: LLM) -> Trio:
    """The three servers, started at once, each on its own copy of ``FILES`` under
    ``base``; ``RuntimeError`` (with the log) if one does not start."""
    parent = str(Path(llmstruct.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONPATH": parent + (os.pathsep + path if path else ""),
        "LLMSTRUCT_API_KEY": KEY,
        "LLMSTRUCT_RATE_LIMIT": "0",  # the custom server's own limit: not in the contract
        "LLMSTRUCT_ACCESS_LOG": "false",
        "XDG_CONFIG_HOME": str(base / "xdg"),
        "LLMSTRUCT_LLM_BASE_URL": llm.url,
        "LLMSTRUCT_LLM_MODEL": "fake-model",
        "LLMSTRUCT_LLM_RETRIES": "0",
        "LLMSTRUCT_LLM_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "LLMSTRUCT_LLM_READ_TIMEOUT": str(READ_TIMEOUT),
    }
    spawned = [_spawn(name, base, env) for name in SERVERS]
    servers: dict[str, Server] = {}
    try:
        for item in spawned:
            servers[item[0]] = _wait_serving(*item)
    except RuntimeError:
        for server in servers.values():
            server.stop()
        for _, _, process, _ in spawned:
            if process.poll() is None:
                process.kill()
                process.wait()
        raise
    return Trio(servers, llm)


class Trio:
    """The three servers; ``run(key, scenario)`` observes a scenario on each, once."""

    def __init__(self, servers: dict[str, Server], llm: LLM) -> None:
        self.servers = servers
        self.llm = llm
        self.runs: dict[Any, dict[str, Any]] = {}
        self.pool = ThreadPoolExecutor(len(servers), thread_name_prefix="contract")

    def run(
        self, key: Any, scenario: Scenario, around: Callable[[], Any] | None = None
    ) -> dict[str, Any]:
        if key not in self.runs:
            with around() if around else contextlib.nullcontext():
                futures = {
                    name: self.pool.submit(_attempt, scenario, server)
                    for name, server in self.servers.items()
                }
                self.runs[key] = {name: future.result() for name, future in futures.items()}
        return self.runs[key]

    def close(self) -> None:
        self.pool.shutdown()
        for server in self.servers.values():
            server.stop()


def _attempt(scenario: Scenario, server: Server) -> Any:
    try:
        return scenario(server)
    except Exception as exc:  # an observation too: the comparison names the server
        return {"scenario raised": f"{type(exc).__name__}: {exc}"}


def before_scan(server: Server) -> list[Observation]:
    """Before any scan, the struct-reading endpoints are 409 (run when the servers start)."""
    return [
        server.observe("GET", "/api/v1/project/info"),
        server.observe("GET", "/api/v1/project/struct", show=("etag",)),
        server.observe("GET", "/api/v1/project/context/FULL"),
        server.observe("GET", "/api/v1/project/context/NOPE"),
        server.observe("POST", "/api/v1/context", json={"mode": "MINIMAL"}),
        server.observe("POST", "/api/v1/query", json={"query": "anything?"}),
        server.observe("GET", "/api/v1/tasks"),
    ]


class Contract:
    """``check(scenario)``: this test's server observed what each other server did."""

    def __init__(self, trio: Trio, name: str, key: Any) -> None:
        self.trio = trio
        self.name = name
        self.key = key

    def check(
        self, scenario: Scenario, around: Callable[[], Any] | None = None, key: Any = None
    ) -> Any:
        """Run (or reuse) ``scenario`` on the three servers; assert this server's
        observations equal the others'; return them (for checks of the answer itself)."""
        seen = self.trio.run(key or self.key, scenario, around)
        mine = seen[self.name]
        raised = isinstance(mine, dict) and mine.get("scenario raised")
        assert not raised, f"the scenario failed on {self.name}: {raised}"
        for other, theirs in seen.items():
            if other != self.name:
                assert mine == theirs, f"{self.name} (left) differs from {other} (right)"
        return mine

"""Processes and client load for the migrator's tests.

``child_env()`` is this environment with the llmstruct under test first on
PYTHONPATH (servers are started with ``proxy_helpers.start``). ``ClientLoad`` is a few async
httpx clients, in a thread with its own event loop, hitting a mix of v1
endpoints through the proxy until stopped, and recording every request: its
status, or the exception that ended it. A failure is anything but the status the
endpoint should answer.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import llmstruct
from tests.migration.proxy_helpers import HANG


def child_env(**extra: str) -> dict[str, str]:
    parent = str(Path(llmstruct.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": parent + (os.pathsep + path if path else ""), **extra}


@dataclass
class Outcome:
    at: float
    request: str
    status: int | None  # None: no answer (the exception's name is in ``error``)
    expected: int
    error: str = ""  # the exception's name, or the body of an unexpected answer

    @property
    def failed(self) -> bool:
        return self.status != self.expected


@dataclass
class ClientLoad:
    """``clients`` async clients hitting ``url`` through a mix of endpoints until ``stop``."""

    url: str
    api_key: str
    clients: int = 4
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> ClientLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(HANG)

    def failures(self, since: float = 0.0) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.failed and o.at >= since]

    def count(self, since: float = 0.0) -> int:
        return sum(1 for o in list(self.outcomes) if o.at >= since)

    def wait_for(self, requests: int, since: float = 0.0) -> None:
        """Until ``requests`` more requests ended after ``since`` (bounded by HANG)."""
        deadline = time.monotonic() + HANG
        while self.count(since) < requests and time.monotonic() < deadline:
            time.sleep(0.05)

    async def _run(self) -> None:
        headers = {"X-API-Key": self.api_key}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=HANG) as client:
            await asyncio.gather(*(self._client(client, n) for n in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient, number: int) -> None:
        step = number
        while not self._stop.is_set():
            await self._one(client, step)
            step += 1

    async def _one(self, client: httpx.AsyncClient, step: int) -> None:
        kind = step % 6
        if kind == 0:
            await self._call(client, "GET", "/api/v1/system/health", 200)
        elif kind == 1:
            await self._call(client, "GET", "/api/v1/project/info", 200)
        elif kind == 2:
            await self._call(client, "GET", "/api/v1/project/context/MINIMAL", 200)
        elif kind == 3:
            await self._call(client, "GET", "/api/v1/tasks?limit=5", 200)
        elif kind == 4:
            await self._call(client, "POST", "/api/v1/context", 200,
                             json={"mode": "FOCUSED", "query": "total price"})  # fmt: skip
        else:
            task = {"title": f"task {step}", "tags": ["load"]}
            created = await self._call(client, "POST", "/api/v1/tasks", 201, json=task)
            if created is not None:
                # Both servers share one task database, so either may answer this.
                await self._call(client, "GET", f"/api/v1/tasks/{created['id']}", 200)

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, expected: int, **options: Any
    ) -> Any:
        name = f"{method} {path.split('?')[0]}"
        try:
            response = await client.request(method, path, **options)
        except httpx.HTTPError as exc:
            self.outcomes.append(
                Outcome(time.monotonic(), name, None, expected, type(exc).__name__)
            )
            return None
        status = response.status_code
        detail = "" if status == expected else response.text[:200]
        self.outcomes.append(Outcome(time.monotonic(), name, status, expected, detail))
        return response.json() if status == expected else None

"""Server test fixtures (helpers in ``tests/server/helpers.py``).

``backend`` runs a test over every parser driver (``helpers.BACKENDS``: ``h11``,
``httptools`` and ``httptools-py``, the pure twin of the httptools driver).
``serve(app=None, http=None, **limits)`` starts the server on 127.0.0.1 port 0 in
a background thread (stopped at teardown). ``harness(app=None, **limits)`` drives
one ``HttpProtocol`` through a fake transport, for byte-exact protocol tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmstruct.server.app import App
from llmstruct.server.limits import Limits
from tests.server.helpers import BACKENDS, Harness, Served, ServerThread, make_app


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def serve(backend: str) -> Iterator[Any]:
    """``serve(app=None, **limits)`` starts a server with the test app and returns it."""
    started: list[ServerThread] = []

    def start(app: App | None = None, http: str | None = None, **limits: Any) -> ServerThread:
        server = ServerThread(app or make_app(), Limits().replace(**limits), http or backend)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def harness(backend: str) -> Iterator[Any]:
    made: list[Harness] = []

    def make(app: App | None = None, **limits: Any) -> Harness:
        made.append(Harness(backend, app, **limits))
        return made[-1]

    yield make
    for item in made:
        item.close()


@pytest.fixture
def served(tmp_path):
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        started.append(Served(tmp_path, *args, env=env))
        return started[-1]

    yield start
    for item in started:
        item.close()

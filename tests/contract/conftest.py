"""The v1 API contract suite: one set of tests, three servers, the same answers.

Three servers, each a real process on its own loopback port, each on its own copy
of one small project, all with the same API key and the same fake OpenAI-compatible
LLM (``fakellm.FakeLLM``, in this process):

* ``custom``            ``python -m llmstruct serve`` (the server being migrated to);
* ``fastapi-inprocess`` ``python -m llmstruct.migration.serve_fastapi --bridge inprocess``;
* ``fastapi-cli``       the same with ``--bridge cli`` (an ``engine-call`` subprocess
  per engine call, as design sheet 02's service did).

No expected answer is written down here. A test is a *scenario*: a function that
sends requests to one server and returns what it observed, normalised (``observe``:
status, content type, the body without volatile fields, and the headers the test
names). ``contract.check(scenario)`` runs the scenario once on all three servers (in
parallel threads, the first time any of the three parametrised tests asks, then
cached), and the test for server X asserts that X observed exactly what each of
the other two did. So every test can fail on every server, and a difference names
the server that differs.

Stateful scenarios (tasks) stay in step because a scenario always runs on all three
servers at the same point of the session: each server sees the same sequence of
requests, on its own database. The answers before any scan are recorded when the
servers start (``before_scan``), so that test does not depend on test order.

The machinery (starting the servers, normalising, ``Trio``, ``Contract``) is in
``harness.py``; the tests are ``test_*.py`` by area. Where the servers differed and
the contract had to choose (a gzipped ETag is weak, HEAD is answered, ``Allow``
lists every method, no trailing-slash redirect, ``%2F`` is data, every 422 is
written), the reasons are in ``llmstruct/migration/fastapi_app.py``.

Runtime: the servers start once per session, in parallel; the CLI bridge spawns a
Python process per engine call, so scenarios keep engine calls few (validation
errors, auth and routing never reach the engine). LLM timeouts are short (the
backend-too-slow case waits ``READ_TIMEOUT`` once, on all three at once).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("tests.contract.harness")  # its assert shows the difference

from tests.contract.harness import (  # noqa: E402
    LLM,
    SERVERS,
    Contract,
    Server,
    Trio,
    before_scan,
    start_servers,
)


@pytest.fixture(scope="session")
def llm() -> Iterator[LLM]:
    fake = LLM()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def trio(tmp_path_factory: pytest.TempPathFactory, llm: LLM) -> Iterator[Trio]:
    pytest.importorskip("fastapi", reason="the reference servers need the [fastapi] extra")
    pytest.importorskip("uvicorn", reason="the reference servers need the [fastapi] extra")
    try:
        trio = start_servers(tmp_path_factory.mktemp("contract"), llm)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        trio.run("before_scan", before_scan)
        yield trio
    finally:
        trio.close()


# -- what the tests use ----------------------------------------------------------------------------
@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def contract(request: pytest.FixtureRequest, trio: Trio, server: str) -> Contract:
    params = getattr(request.node, "callspec", None)
    others = tuple(sorted((k, repr(v)) for k, v in (params.params if params else {}).items()
                          if k != "server"))  # fmt: skip
    return Contract(trio, server, (request.node.module.__name__, request.node.originalname, others))


@pytest.fixture
def scanned(trio: Trio) -> Trio:
    """The servers after one successful scan of their projects (done once, on all three)."""

    def scan(server: Server) -> int:
        return server.call("POST", "/api/v1/project/scan", json={}).status_code

    statuses = trio.run("first scan", scan)
    assert statuses == dict.fromkeys(SERVERS, 200), statuses
    return trio

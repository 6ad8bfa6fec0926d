"""The Autobahn conformance cases 1-10 against the started server, driven by kosoku.

The same run as ``perf/autobahn.py`` (which also writes the HTML reports), kept
in the suite so a change that breaks conformance fails CI. It takes some
seconds: case 9 sends messages up to 16 MiB.
"""

from __future__ import annotations

import pytest

from tests.server.ws_helpers import async_test, echo_app, running_server

# kosoku is a test dependency (the [test] extra); without it there is nothing to run.
kosoku = pytest.importorskip("kosoku", reason="kosoku (Autobahn runner) is not installed")

# Categories 1-10; Autobahn has no category 8. 12 and 13 need permessage-deflate,
# which the server does not offer.
CASES = [f"{n}.*" for n in (1, 2, 3, 4, 5, 6, 7, 9, 10)]


# One backend: after the hand-over the HTTP backend plays no part (the upgrade
# itself is tested over both in test_websocket.py); perf/autobahn.py runs either.
@async_test(deadline=120.0)
async def test_autobahn_cases_1_to_10_pass():
    async with running_server(echo_app(), http="auto") as (_, port):
        try:
            results = await kosoku.run_fuzzingclient(
                f"ws://127.0.0.1:{port}/echo", CASES, None, concurrency=4
            )
        except kosoku.FailureError as failure:
            results = failure.results
    failed = [
        f"{r.case_id}: {r.behavior.value}/{r.behavior_close.value} {r.result} {r.result_close}"
        for r in results
        if not r.passed
    ]
    assert not failed
    assert len(results) == 301

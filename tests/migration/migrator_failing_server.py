"""``python tests/migration/migrator_failing_server.py [serve flags]``: a custom server that fails.

``llmstruct serve`` with one more (innermost) middleware: it answers ``500
{"detail": "injected failure"}`` to a share of the API requests, the share from
``MIGRATOR_TEST_FAIL_SHARE`` (default 0.5). The choice is a counter, not a coin:
with 0.5 exactly every second request fails, so the error rate a window sees is
known. ``/api/v1/system/*`` (health and the metrics the migrator reads RSS from)
never fails. The migrator's end-to-end test puts it behind the proxy to watch the
migrator roll back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llmstruct.server.app import error_json  # noqa: E402
from llmstruct.server.serve import main  # noqa: E402

INJECTED = "injected failure"


class FailShare:
    def __init__(self, share: float) -> None:
        self.share = share
        self.seen = 0
        self.failed = 0

    def on_request(self, request):
        if request.path.startswith("/api/v1/system/"):
            return None
        self.seen += 1
        if self.failed < self.seen * self.share:
            self.failed += 1
            return error_json(500, INJECTED)
        return None


def configure(app) -> None:
    app.add_middleware(FailShare(float(os.environ.get("MIGRATOR_TEST_FAIL_SHARE", "0.5"))))


if __name__ == "__main__":
    sys.exit(main(configure=configure))

"""``python tests/server/serve_app.py [serve flags]``: ``llmstruct serve`` plus test routes.

The serve tests run this as a real process (workers, signals, systemd
notification) and need a request that stays in flight: ``GET /test/slow?s=``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llmstruct.server.app import PlainTextResponse  # noqa: E402
from llmstruct.server.serve import main  # noqa: E402


def configure(app) -> None:
    @app.route("/test/slow", public=True)
    async def slow(request):
        if "mark" in request.query:  # tells the test the request is in flight
            Path(request.query["mark"]).touch()
        await asyncio.sleep(float(request.query.get("s", "1")))
        return PlainTextResponse(f"slow done by {os.getpid()}")

    @app.route("/test/pid", public=True)
    def pid(request):
        return PlainTextResponse(str(os.getpid()))


if __name__ == "__main__":
    sys.exit(main(configure=configure))

"""Run the Autobahn WebSocket conformance cases 1-10 against the server, with kosoku.

kosoku (``pip install kosoku``) replays the Autobahn TestSuite's own case files
as a fuzzing client, without Python 2 or Docker. This script starts the real
server (``llmstruct.server.listener.Server``, one worker, in a child process)
with an echo handler on ``/``, points kosoku at it, prints a summary per
verdict and writes the Autobahn HTML/JSON reports::

    python perf/autobahn.py                      # cases 1-10, the httptools backend
    python perf/autobahn.py --http h11           # the same over the h11 backend
    python perf/autobahn.py --loop uvloop        # the server on uvloop
    python perf/autobahn.py --case '9.*' -p 4    # some cases, 4 at a time
    open perf/results/autobahn/index.html   # (perf/results/ is git-ignored)

Cases 12 and 13 (permessage-deflate) are not run: the server offers no
compression. The exit status is 0 when every case passed (OK, NON-STRICT or
INFORMATIONAL, as Autobahn counts them), 1 otherwise. The server runs with the
default limits (16 MiB message cap: case 9.1.6 sends exactly 16 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout and its in-place build

# Categories 1-10; Autobahn has no category 8 (its numbering skips it).
CASES = [f"{n}.*" for n in (1, 2, 3, 4, 5, 6, 7, 9, 10)]


def serve(port: int, http: str, loop: str) -> None:
    """Child process: the echo server on 127.0.0.1:``port`` (0: any) until SIGTERM."""
    from llmstruct.server.app import App
    from llmstruct.server.limits import DEFAULT_LIMITS
    from llmstruct.server.listener import Server, bind_socket

    app = App()

    @app.websocket("/")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = Server(app, DEFAULT_LIMITS, http=http)
        sock = bind_socket("127.0.0.1", port, 128)
        server.start(sock)
        print("ready", sock.getsockname()[1], flush=True)
        await stop.wait()
        await server.shutdown(timeout=2.0)

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


async def fuzz(url: str, cases: list[str], parallelism: int, outdir: Path) -> int:
    from kosoku import FailureError, run_fuzzingclient
    from kosoku._report import write_reports  # what the kosoku CLI uses

    started = time.monotonic()
    try:
        results = await run_fuzzingclient(url, cases, None, concurrency=parallelism)
    except FailureError as failure:
        results = failure.results
    elapsed = time.monotonic() - started
    write_reports(results, str(outdir))
    verdicts = collections.Counter((r.behavior.value, r.behavior_close.value) for r in results)
    failed = [r for r in results if not r.passed]
    print(f"{len(results)} cases in {elapsed:.1f} s; reports in {outdir}/")
    for (behavior, close), count in sorted(verdicts.items()):
        print(f"  {count:4d}  behavior={behavior}  close={close}")
    for result in failed:
        print(f"  FAILED {result.case_id}: {result.result} / {result.result_close}")
    print(f"passed {len(results) - len(failed)}/{len(results)}")
    return 1 if failed or not results else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--http", default="httptools", choices=("h11", "httptools", "auto"))
    parser.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    parser.add_argument("--case", action="append", help="case id or glob (default: 1.* .. 10.*)")
    parser.add_argument("-p", "--parallelism", type=int, default=2)
    parser.add_argument("--outdir", type=Path, default=ROOT / "perf" / "results" / "autobahn")
    parser.add_argument("--serve-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_only is not None:
        serve(args.serve_only, args.http, args.loop)
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--serve-only", "0"]
    child = subprocess.Popen(
        [*command, "--http", args.http, "--loop", args.loop],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        if len(ready) != 2 or ready[0] != "ready":
            print("the server did not start", file=sys.stderr)
            return 2
        port = int(ready[1])
        print(f"server: {args.http} backend, {args.loop} loop, 127.0.0.1:{port}")
        cases = args.case or CASES
        return asyncio.run(fuzz(f"ws://127.0.0.1:{port}/", cases, args.parallelism, args.outdir))
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


if __name__ == "__main__":
    sys.exit(main())

"""HTTP load comparison: llmstruct's server (httptools and h11) against FastAPI on uvicorn.

Both sides serve the same two endpoints, one worker each:

* ``GET /api/v1/system/health`` -- no auth, ``{"status", "version", "uptime_s"}``;
* ``GET /api/v1/demo/items/{item_id}`` -- API key (``Authorization: Bearer`` or
  ``X-API-Key``, compared in constant time), then a JSON lookup by path
  parameter in a 1,000-item table (404 if absent).

llmstruct runs its full production middleware chain (request id, rate limiter
with a limit that is never reached, auth, CORS, gzip, metrics), started the way
``llmstruct serve`` starts a worker. FastAPI gets its best case: ``async def``
handlers, a ``Depends`` key check, uvicorn with httptools and uvloop. The access
log is the same for both (``--access-log``): ``off`` (the default) measures the
HTTP stacks like for like; ``on`` gives each its own default access log (one JSON
line per request for llmstruct, uvicorn's access logger for FastAPI), written to
a temporary file.

Each server process is pinned to one core and ``wrk`` to another (``taskset``),
and all three servers are measured in the same run, in rounds whose order
rotates; the table reports the median of the rounds. Per server and endpoint:
requests/s, p50 and p99 latency (wrk ``--latency``), and the server's RSS after
the round (VmRSS, and VmHWM for the peak)::

    python perf/bench_http.py                      # 3 rounds x 10 s per endpoint
    python perf/bench_http.py --rounds 5 --duration 15 --connections 64 --json out.json

Targets (issue 4): httptools >= 5x FastAPI's throughput with p99 <= 1/5 of
FastAPI's; h11 >= 1.5x; RSS <= 50 % of FastAPI's.
"""

from __future__ import annotations

# Only light imports at module level: the server processes this file starts
# (``--serve``) must not carry the load generator's modules, since their RSS is
# measured. The orchestration imports what it needs inside its functions.
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

KEY = "bench-key-0123456789abcdef"
ITEMS = {str(i): {"id": i, "name": f"item {i}", "tags": ["a", "b"], "score": i * 0.5}
         for i in range(1000)}  # fmt: skip
HEALTH = "/api/v1/system/health"
LOOKUP = "/api/v1/demo/items/42"
SERVERS = ("httptools", "h11", "fastapi")
CEILING = "ceiling"  # not an HTTP server: see serve_ceiling


# -- the servers (run in a child process: ``--serve NAME --port N``) -------------------------------
def add_demo_route(app: Any) -> None:
    """The key-checked lookup on an llmstruct App (also perf/instructions.py's)."""
    from llmstruct.server.app import HTTPException

    def item(request):
        found = ITEMS.get(request.path_params["item_id"])
        if found is None:
            raise HTTPException(404, "Item not found")
        return found

    app.add_route("/api/v1/demo/items/{item_id}", item)


def serve_llmstruct(http: str, port: int, access_log: bool) -> int:
    from llmstruct.server.config import load_server_config
    from llmstruct.server.serve import run

    environ = {"LLMSTRUCT_API_KEY": KEY, "LLMSTRUCT_RATE_LIMIT": "1000000000",
               "LLMSTRUCT_RATE_BURST": "1000000000",
               "LLMSTRUCT_ACCESS_LOG": "1" if access_log else "0"}  # fmt: skip
    flags = {"host": "127.0.0.1", "port": port, "workers": 1, "http": http, "loop": "uvloop"}
    config = load_server_config(flags, environ, Path.cwd())
    return run(config, configure=add_demo_route)


def serve_fastapi(port: int, access_log: bool) -> int:
    import uvicorn

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from http_fastapi_app import make_app

    uvicorn.run(make_app(KEY, ITEMS), host="127.0.0.1", port=port, loop="uvloop",
                http="httptools", access_log=access_log,
                log_level="info" if access_log else "warning")  # fmt: skip
    return 0


def serve_ceiling(port: int) -> int:
    """A reference, not a contender: answers every read with a canned response.

    No parsing, no routing, no framework: one uvloop protocol doing the same
    socket work per request (read, write). Its rate is the ceiling any Python
    server can reach on this machine, which puts the other numbers in scale.
    """
    import uvloop

    body = b'{"status":"ok","version":"0.1.0","uptime_s":1.0}'
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    response = head % len(body) + body

    class Canned(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(response)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", port)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    uvloop.run(main())
    return 0


# -- measuring -------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: Any, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(
                    f"GET {HEALTH} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode()
                )
                if sock.recv(12).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def start(name: str, cpu: int, access_log: str = "off") -> tuple[Any, int]:
    """Start server ``name`` pinned to ``cpu`` on a free port; ``(process, port)``.

    A free port can be taken between probing and binding (wrk's client sockets
    use the same range), so a failed start is retried on another port; the
    server's stderr is reported if all attempts fail.
    """
    import subprocess
    import tempfile

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSTRUCT_")}
    errors = []
    for _ in range(3):
        port = free_port()
        command = ["taskset", "-c", str(cpu), sys.executable, __file__, "--serve", name,
                   "--port", str(port), "--access-log", access_log]  # fmt: skip
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                       stdout=stderr, stderr=stderr)  # fmt: skip
            try:
                wait_ready(port, process)
                return process, port
            except RuntimeError as exc:
                stop(process)
                stderr.seek(0)
                errors.append(f"{exc}: {stderr.read().decode(errors='replace')[-500:]}")
    raise RuntimeError(f"{name} did not start:\n" + "\n".join(errors))


def stop(process: Any) -> None:
    import subprocess

    process.send_signal(signal.SIGTERM)
    try:
        process.wait(40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, path: str, args: Any, duration: float, headers: list[str]) -> dict:
    import re
    import subprocess

    command = ["taskset", "-c", str(args.client_cpu), args.wrk, "-t1", f"-c{args.connections}",
               f"-d{max(1, round(duration))}s", "--latency", *sum((["-H", h] for h in headers), []),
               f"http://127.0.0.1:{port}{path}"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        latency[pct] = float(value) * _UNITS[unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if bad:
        raise RuntimeError(f"{path}: {bad.group(1)} non-2xx responses:\n{out}")
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"], "requests": total,
            "socket_errors": errors.group(0) if errors else ""}  # fmt: skip


def rss_kib(pid: int) -> tuple[int, int]:
    import re

    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return rss, hwm


def anon_kib(pid: int) -> int:
    """The process's private memory: its anonymous resident pages (RssAnon).

    RSS also counts the shared libraries' resident pages (libpython, OpenSSL, which
    uvloop loads): the same for every Python server here and shared between the
    workers of one. RssAnon is what the process itself allocated.
    """
    import re

    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"RssAnon:\s+(\d+)", status).group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, port: int, path: str, args: Any, headers: list[str]) -> dict:
    """wrk's figures plus the server's CPU time per request and its share of its CPU.

    On a shared machine the server may not get its whole CPU (other jobs, or a
    client that cannot keep it busy): CPU time per request compares the
    servers' own cost whatever share each got; ``cpu_share`` shows that share.
    """
    before = cpu_seconds(pid)
    result = wrk(port, path, args, args.duration, headers)
    used = cpu_seconds(pid) - before
    result["cpu_us"] = used / max(1, result["requests"]) * 1e6
    result["cpu_share"] = used / args.duration
    return result


def one_round(name: str, args: Any) -> dict:
    process, port = start(name, args.server_cpu, args.access_log)
    try:
        auth = [f"Authorization: Bearer {KEY}"]
        wrk(port, LOOKUP, args, args.warmup, auth)  # warm-up, not recorded
        result = {
            "health": measured(process.pid, port, HEALTH, args, []),
            "lookup": measured(process.pid, port, LOOKUP, args, auth),
        }
        result["rss_kib"], result["hwm_kib"] = rss_kib(process.pid)
        result["anon_kib"] = anon_kib(process.pid)
        return result
    finally:
        stop(process)


def median_of(rounds: list[dict]) -> dict:
    import statistics

    merged: dict = {}
    for endpoint in ("health", "lookup"):
        merged[endpoint] = {
            key: statistics.median(r[endpoint][key] for r in rounds)
            for key in ("rps", "p50_ms", "p99_ms", "cpu_us", "cpu_share")
        }
    for key in ("rss_kib", "hwm_kib", "anon_kib"):
        merged[key] = statistics.median(r[key] for r in rounds)
    return merged


def machine() -> dict:
    import platform
    import shutil
    import subprocess

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    versions = {}
    for package in ("httptools", "h11", "uvloop", "uvicorn", "fastapi", "starlette", "pydantic"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            versions[package] = "?"
    wrk_version = subprocess.run([shutil.which("wrk") or "wrk", "-v"], capture_output=True,
                                 text=True).stdout.splitlines()[:1]  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_version[0] if wrk_version else "?",
        "packages": versions,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def report(results: dict, args: Any, info: dict) -> str:
    lines = [
        f"machine: nproc={info['nproc']}, CPU {info['cpu']}, Python {info['python']}, "
        f"kernel {info['kernel']}, load average at start {' '.join(info['loadavg_at_start'])}",
        f"wrk: {args.connections} connections, 1 thread, {args.duration:g} s per endpoint, "
        f"median of {args.rounds} rounds; server on CPU {args.server_cpu}, wrk on CPU "
        f"{args.client_cpu}; access log {args.access_log} for every server",
        "",
        "| server | endpoint | req/s | p50 ms | p99 ms | RSS MiB (peak) | private MiB "
        "| CPU µs/req (share) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"httptools": "llmstruct httptools", "h11": "llmstruct h11",
             "fastapi": "FastAPI/uvicorn", CEILING: "ceiling: canned bytes, no HTTP"}  # fmt: skip
    for name in (*SERVERS, CEILING):
        if name not in results:
            continue
        r = results[name]
        for endpoint in ("health", "lookup"):
            e = r[endpoint]
            lines.append(
                f"| {names[name]} | {endpoint} | {e['rps']:,.0f} | {e['p50_ms']:.2f} | "
                f"{e['p99_ms']:.2f} | {r['rss_kib'] / 1024:.1f} ({r['hwm_kib'] / 1024:.1f}) | "
                f"{r['anon_kib'] / 1024:.1f} | {e['cpu_us']:.1f} ({e['cpu_share']:.0%}) |"
            )
    base = results["fastapi"]
    lines += ["", "| vs FastAPI | endpoint | throughput | p99 | RSS | targets | CPU/req "
              "| private |", "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |"]  # fmt: skip
    for name, needed in (("httptools", 5.0), ("h11", 1.5)):
        r = results[name]
        for endpoint in ("health", "lookup"):
            speed = r[endpoint]["rps"] / base[endpoint]["rps"]
            p99 = r[endpoint]["p99_ms"] / base[endpoint]["p99_ms"]
            rss = r["rss_kib"] / base["rss_kib"]
            ok = [speed >= needed, rss <= 0.5] + ([p99 <= 0.2] if name == "httptools" else [])
            lines.append(
                f"| {names[name]} | {endpoint} | {speed:.2f}x (>= {needed:g}x) | {p99:.2f}x"
                f"{' (<= 0.2x)' if name == 'httptools' else ''} | {rss:.2f}x (<= 0.5x) | "
                f"{'met' if all(ok) else 'NOT met'} | "
                f"1/{base[endpoint]['cpu_us'] / r[endpoint]['cpu_us']:.2f} | "
                f"{r['anon_kib'] / base['anon_kib']:.2f}x |"
            )
    if CEILING in results:
        ceiling = results[CEILING]
        lines += ["", "Share of the ceiling (the socket work alone, see serve_ceiling):"]
        for name in SERVERS:
            shares = ", ".join(
                f"{endpoint} {results[name][endpoint]['rps'] / ceiling[endpoint]['rps']:.0%}"
                for endpoint in ("health", "lookup")
            )
            lines.append(f"- {names[name]}: {shares}")
        need = 5 * base["health"]["rps"]
        lines.append(
            f"- 5x FastAPI's health rate would be {need:,.0f} req/s; the ceiling is "
            f"{ceiling['health']['rps']:,.0f} req/s"
        )
    return "\n".join(lines)


def main() -> int:
    import argparse
    import json
    import shutil

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", choices=(*SERVERS, CEILING), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--only", choices=SERVERS, action="append", help="measure only these")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the raw-socket reference")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--access-log", choices=("off", "on"), default="off",
                        help="each server's access log, for both alike (default: off)")  # fmt: skip
    args = parser.parse_args()
    access_log = args.access_log == "on"
    if args.serve == "fastapi":
        return serve_fastapi(args.port, access_log)
    if args.serve == CEILING:
        return serve_ceiling(args.port)
    if args.serve:
        return serve_llmstruct(args.serve, args.port, access_log)
    info = machine()
    names = list(args.only or SERVERS) + ([] if args.no_ceiling else [CEILING])
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    for index in range(args.rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            result = one_round(name, args)
            rounds[name].append(result)
            print(f"round {index + 1} {name}: health {result['health']['rps']:,.0f} req/s, "
                  f"lookup {result['lookup']['rps']:,.0f} req/s, RSS {result['rss_kib']} KiB",
                  file=sys.stderr, flush=True)  # fmt: skip
    results = {name: median_of(runs) for name, runs in rounds.items()}
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": info, "args": vars(args), "rounds": rounds, "median": results}, indent=2
            )
        )
    if set(SERVERS) <= set(results):
        print(report(results, args, info))
    else:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())

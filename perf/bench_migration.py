"""The migration benchmark: the custom server against the FastAPI service it replaces.

Five servers, started one at a time, each one worker on the same scanned project
(a copy of the standard library's ``json``, ``email`` and ``asyncio`` packages, so
context has real ranking to do), with the same API key:

* ``custom-httptools``, ``custom-h11`` -- ``llmstruct serve`` (the v1 API and the
  production middleware chain: request id, auth, CORS, gzip, rate limit -- set
  high enough never to answer 429 -- and metrics), uvloop;
* ``fastapi-inprocess``, ``fastapi-cli`` -- ``llmstruct serve-fastapi --bridge
  inprocess|cli`` under uvicorn (httptools + uvloop, its automatic choice);
* ``limit`` -- ``bench_http.serve_ceiling``: canned bytes for every read, no HTTP
  at all; the rate the socket work alone allows on this machine.

The access log is alike for every server (``--access-log``): ``off`` by default
(FastAPI with ``--log-level warning``, ours with ``LLMSTRUCT_ACCESS_LOG=0``), or
``on`` (uvicorn's access logger at ``info``, our JSON line per request), each
server's output drained from one pipe.

Each server gets a fresh copy of the project with the same 10 tasks already in
its database, and is pinned to one core (``--server-cpu``) while ``wrk`` runs on
the other (``--client-cpu``). Load: ``wrk`` with ``bench_migration_mix.lua``:

* ``mix`` -- each connection rotates through health, task by id (the ids turn
  over the 10 tasks), project info, FOCUSED context (one query repeated, so it is
  answered from the context cache) and task create (201): one fifth each;
* then one run per endpoint (``health``, ``task``, ``info``, ``context``,
  ``create``), because wrk reports one latency distribution per run: only these
  say what each endpoint costs (the mix's percentiles blend five of them).

Every run is closed-loop (``--connections`` connections, each sending its next
request when the last is answered), so latency includes the queue in front of a
saturated server: p95 ~ connections / throughput. The CLI bridge spawns a process
per engine call (about a second here), so it gets only ``mix`` and ``context``,
with ``--cli-connections`` connections for ``--cli-duration`` s; the limit gets
``health`` and ``mix``. Errors are wrk's non-2xx/3xx count plus socket errors;
RSS is the server process's VmRSS (and VmHWM, its peak) after its runs -- for the
CLI bridge the uvicorn process only, not its short-lived children.

The projects live in ``--workdir`` (default: the system's temporary directory), and
so does each task database: a create commits with ``synchronous=FULL``, one fsync
each, so on a disk the ``create`` figures (and the mix's) include the disk's sync
latency. ``--workdir /dev/shm`` (tmpfs: fsync is free) leaves only the CPU cost.

On a shared machine one run of a server can land in a busy minute of the host
(the same build read 7.4k and 13k req/s on the mix an hour apart), so every server
is measured in ``--rounds`` rounds (3), its order rotating from round to round;
the table gives each figure's median over the rounds, and each target's ratio is
computed within each round (the two servers minutes apart, not the run's length)
and reported as the median with every round's value beside it. The CLI bridge,
thousands of times off its target and slow to measure, runs in the first round
only.

Health against the limit is measured once more, in pairs (``--pairs``, 5): the
limit spends ~8 us of CPU a request, so the drift of a shared host's speed over the
minutes between two servers' turns in a round moves that ratio by a fifth either
way (rounds of one build read 1.72x and 2.46x). After the rounds, custom-httptools
and the limit are started side by side (both pinned to the server core, one idle
while the other is loaded) and measured in alternating runs seconds apart, the
order swapped from pair to pair; the ratio judged is the median of the pairs'
ratios, and the rounds' own ratio is reported beside it.

Targets (issue 6): custom-httptools on the mix >= 5x FastAPI in-process
throughput, p95 <= 1/5, RSS <= 50 %; context >= 100x the CLI bridge's throughput;
health within 2x of the limit::

    python perf/bench_migration.py                         # all five, 3 rounds, ~6 minutes
    python perf/bench_migration.py --rounds 1              # one round, ~2 minutes
    python perf/bench_migration.py --servers custom-httptools,limit --duration 2
    python perf/bench_migration.py --json out.json --profile /tmp/prof

``--profile DIR`` runs the custom servers under cProfile (``DIR/<server>.prof``);
their figures are then not comparable, only the split of the time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PERF = Path(__file__).resolve().parent
CHECKOUT = PERF.parent
sys.path.insert(0, str(PERF))
import bench_http  # noqa: E402  (the limit server, RSS, machine description)

SERVERS = ("custom-httptools", "custom-h11", "fastapi-inprocess", "fastapi-cli", "limit")
ENDPOINTS = ("health", "task", "info", "context", "create")
KEY = bench_http.KEY
LUA = PERF / "bench_migration_mix.lua"
PACKAGES = ("json", "email", "asyncio")
N_TASKS = 10
CONTEXT_PATH = "/api/v1/project/context/FOCUSED?query=decode%20a%20json%20document"
CREATE_BODY = json.dumps(
    {"title": "benchmark task", "description": "created by the load mix",
     "priority": "high", "tags": ["bench", "load"]}, separators=(",", ":"),
)  # fmt: skip
EXIT_USAGE = 2


class BenchError(Exception):
    """A server that cannot be measured: reported, and the others still run."""


# -- the project ---------------------------------------------------------------------------------
def make_project(workdir: Path) -> tuple[Path, list[str]]:
    """Scan a copy of ``PACKAGES`` into ``workdir/template`` and add the tasks; ``(root, ids)``."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    root = workdir / "template"
    for package in PACKAGES:
        shutil.copytree(stdlib / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__", "test", "tests"))  # fmt: skip
    scan = subprocess.run([sys.executable, "-m", "llmstruct", "scan", str(root), "-q"],
                          env=_env(), capture_output=True, text=True)  # fmt: skip
    if scan.returncode != 0:
        raise BenchError(f"scan failed: {scan.stderr.strip()[-300:]}")
    from llmstruct.engine.core import TASKS_PATH
    from llmstruct.store.tasks import TaskStore

    (root / TASKS_PATH).parent.mkdir(exist_ok=True)
    with TaskStore(root / TASKS_PATH) as store:  # closed: the WAL is checkpointed for the copies
        ids = [store.create({"title": f"seed task {i}", "tags": ["seed"]}).id
               for i in range(N_TASKS)]  # fmt: skip
    return root, ids


def requests_for(ids: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Per run name, the ``(method, path, body)`` requests wrk rotates through."""
    one = {
        "health": ("GET", "/api/v1/system/health", ""),
        "info": ("GET", "/api/v1/project/info", ""),
        "context": ("GET", CONTEXT_PATH, ""),
        "create": ("POST", "/api/v1/tasks", CREATE_BODY),
    }
    mix = []
    for task_id in ids:
        mix += [one["health"], ("GET", f"/api/v1/tasks/{task_id}", ""), one["info"],
                one["context"], one["create"]]  # fmt: skip
    runs = {"mix": mix, **{name: [request] for name, request in one.items()}}
    runs["task"] = [("GET", f"/api/v1/tasks/{task_id}", "") for task_id in ids]
    return runs


# -- the servers ---------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSTRUCT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
    return env


def server_command(name: str, root: Path, profile: Path | None, access_log: bool) -> list[str]:
    python = [sys.executable]
    if profile is not None and name.startswith("custom-"):
        python += ["-m", "cProfile", "-o", str(profile / f"{name}.prof")]
    common = ["--root", str(root), "--port", "0"]
    if name.startswith("custom-"):
        http = name.removeprefix("custom-")
        return [*python, "-m", "llmstruct", "serve", *common, "--workers", "1", "--http", http,
                "--loop", "uvloop"]  # fmt: skip
    bridge = name.removeprefix("fastapi-")
    return [*python, "-m", "llmstruct", "serve-fastapi", *common, "--bridge", bridge,
            "--log-level", "info" if access_log else "warning"]  # fmt: skip


class ServerLog:
    """Drains a server's output (its port announcement, then any access log) from a pipe.

    A pipe, as under systemd, not a file: the custom server writes a log line per
    request, and a log file on the project's disk would add its writes to the
    disk the task database syncs. Only the head (the announcement) and the tail
    (errors) are kept.
    """

    ANNOUNCED = re.compile(rb"serving (?:FastAPI )?on http://127\.0\.0\.1:(\d+)")
    KEEP = 4096

    def __init__(self, pipe: Any) -> None:
        self.head, self.tail = b"", b""
        self.port: int | None = None
        self.closed = threading.Event()
        self._pipe = pipe
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        fd = self._pipe.fileno()
        while chunk := os.read(fd, 1 << 16):
            if len(self.head) < self.KEEP:
                self.head += chunk[: self.KEEP - len(self.head)]
                found = self.ANNOUNCED.search(self.head)
                if found and self.port is None:
                    self.port = int(found.group(1))
            self.tail = (self.tail + chunk)[-self.KEEP :]
        self._pipe.close()
        self.closed.set()

    def text(self) -> str:
        return (self.head + b"\n...\n" + self.tail).decode(errors="replace").strip()[-400:]


def start(name: str, root: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    """Start ``name`` pinned to the server core; ``(process, port)`` once it answers."""
    if name == "limit":
        try:
            return bench_http.start(bench_http.CEILING, args.server_cpu)
        except RuntimeError as exc:
            raise BenchError(str(exc)) from None
    env = _env()
    access_log = args.access_log == "on"
    env.update(LLMSTRUCT_API_KEY=KEY, LLMSTRUCT_RATE_LIMIT="1000000000",
               LLMSTRUCT_RATE_BURST="1000000000",
               LLMSTRUCT_ACCESS_LOG="1" if access_log else "0")  # fmt: skip
    command = ["taskset", "-c", str(args.server_cpu),
               *server_command(name, root, args.profile, access_log)]  # fmt: skip
    # One pipe for both streams: uvicorn logs access lines to stdout, we to stderr.
    process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    log = ServerLog(process.stdout)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if log.port is not None:
            return process, log.port
        time.sleep(0.05)
    bench_http.stop(process)
    log.closed.wait(5)
    raise BenchError(f"{name} did not start (exit {process.returncode}): {log.text()}")


def check_answers(port: int, runs: dict[str, list[tuple[str, str, str]]]) -> None:
    """One request of each kind, before any load: all must succeed (this also loads
    the struct and fills the context cache, which the runs then reuse)."""
    import http.client

    for method, path, body in (runs[endpoint][0] for endpoint in ENDPOINTS):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            headers = {"Authorization": f"Bearer {KEY}"}
            if body:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise BenchError(f"{method} {path}: {response.status} {answer[:200]!r}")


# -- load ----------------------------------------------------------------------------------------
def wrk(port: int, requests: list[tuple[str, str, str]], seconds: int, connections: int,
        timeout: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """One wrk run of ``requests`` in rotation: rps, latency percentiles (ms), errors."""
    env = dict(os.environ, BENCH_MIGRATION_REQUESTS="\n".join("\t".join(r) for r in requests))
    command = ["taskset", "-c", str(args.client_cpu), args.wrk, "-t1", f"-c{connections}",
               f"-d{seconds}s", f"--timeout={timeout}s", "-H", f"Authorization: Bearer {KEY}",
               "-s", str(LUA), f"http://127.0.0.1:{port}/"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    found = re.search(r"^BENCH_MIGRATION (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise BenchError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout)[-300:]}")
    raw = json.loads(found.group(1))
    seconds_run = raw["duration_us"] / 1e6
    socket_errors = sum(raw[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds_run if seconds_run else 0.0,
        **{f"p{p}_ms": raw[f"p{p}_us"] / 1000 for p in (50, 95, 99)},
        "non_2xx": raw["status"],
        "socket_errors": socket_errors,
        "errors": raw["status"] + socket_errors,
    }


def plan(name: str) -> tuple[str, ...]:
    if name == "fastapi-cli":
        return ("mix", "context")
    if name == "limit":
        return ("mix", "health")
    return ("mix", *ENDPOINTS)


def measure(name: str, template: Path, ids: list[str], args: argparse.Namespace,
            round_number: int = 1) -> dict:  # fmt: skip
    root = template.parent / f"{name}-{round_number}" / "project"
    shutil.copytree(template, root)
    runs = requests_for(ids)
    process, port = start(name, root, args)
    try:
        cli = name == "fastapi-cli"
        if name != "limit":
            check_answers(port, runs)
        if not cli and args.warmup > 0:  # not recorded
            wrk(port, runs["mix"], args.warmup, args.connections, 10, args)
        results = {}
        for run in plan(name):
            if cli:
                results[run] = wrk(port, runs[run], args.cli_duration, args.cli_connections,
                                   120, args)  # fmt: skip
            else:
                results[run] = wrk(port, runs[run], args.duration, args.connections, 10, args)
            print(f"  {name} {run}: {results[run]['rps']:,.1f} req/s, p95 "
                  f"{results[run]['p95_ms']:.2f} ms, errors {results[run]['errors']}",
                  file=sys.stderr, flush=True)  # fmt: skip
        rss, hwm = bench_http.rss_kib(process.pid)
    finally:
        bench_http.stop(process)
    return {"runs": results, "rss_kib": rss, "hwm_kib": hwm,
            "errors": sum(r["errors"] for r in results.values())}  # fmt: skip


def paired_health(template: Path, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """limit / custom-httptools on health from ``args.pairs`` pairs of alternating runs
    with both servers up (the module docstring says why); each pair's figures and ratio."""
    root = template.parent / "paired" / "project"
    shutil.copytree(template, root)
    runs = requests_for(ids)
    health = runs["health"]
    processes = []
    try:
        custom, custom_port = start("custom-httptools", root, args)
        processes.append(custom)
        check_answers(custom_port, runs)
        limit, limit_port = start("limit", root, args)
        processes.append(limit)
        ports = {"custom-httptools": custom_port, "limit": limit_port}
        for port in ports.values():
            if args.warmup > 0:  # not recorded
                wrk(port, health, args.warmup, args.connections, 10, args)
        pairs = []
        for index in range(args.pairs):
            order = list(ports) if index % 2 == 0 else list(reversed(ports))
            measured = {name: wrk(ports[name], health, args.duration, args.connections, 10, args)
                        for name in order}  # fmt: skip
            pair = {name: measured[name]["rps"] for name in ports}
            pair["errors"] = sum(m["errors"] for m in measured.values())
            pair["ratio"] = pair["limit"] / pair["custom-httptools"]
            pairs.append(pair)
            print(f"  pair {index + 1}/{args.pairs}: custom-httptools "
                  f"{pair['custom-httptools']:,.1f} req/s, limit {pair['limit']:,.1f} req/s, "
                  f"{pair['ratio']:.2f}x", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        for process in processes:
            bench_http.stop(process)
    return {"pairs": pairs, "errors": sum(p["errors"] for p in pairs)}


def paired_target(paired: dict[str, Any]) -> dict[str, Any]:
    """The health target from the pairs: the median ratio, every pair's beside it."""
    values = [pair["ratio"] for pair in paired["pairs"]]
    value = statistics.median(values)
    return {"value": value, "target": "<= 2", "met": value <= 2.0, "rounds": values}


# -- rounds ----------------------------------------------------------------------------------------
def median_result(rounds: list[dict]) -> dict:
    """One server's rounds as one result: per run and figure the median; errors summed."""
    measured = [r for r in rounds if "error" not in r]
    if not measured:
        return rounds[-1]
    merged: dict[str, Any] = {"runs": {}, "rounds": len(measured)}
    for run in measured[0]["runs"]:
        per_round = [r["runs"][run] for r in measured if run in r["runs"]]
        merged["runs"][run] = {key: statistics.median(r[key] for r in per_round)
                               for key in ("rps", "p50_ms", "p95_ms", "p99_ms")}  # fmt: skip
        for key in ("requests", "non_2xx", "socket_errors", "errors"):
            merged["runs"][run][key] = sum(r[key] for r in per_round)
    for key in ("rss_kib", "hwm_kib"):
        merged[key] = statistics.median(r[key] for r in measured)
    merged["errors"] = sum(r["errors"] for r in measured)
    return merged


def round_ratios(rounds: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """The targets from each round's own figures (servers measured minutes apart, not
    across the whole run), then per target the median and the range over the rounds.
    A server measured in fewer rounds (the CLI bridge: the first only) lends its
    figures to every round."""
    count = max(len(r) for r in rounds.values())
    per_round = [ratios({name: runs[min(index, len(runs) - 1)] for name, runs in rounds.items()})
                 for index in range(count)]  # fmt: skip
    out = {}
    for key, first in per_round[0].items():
        values = [r[key]["value"] for r in per_round if r[key]["value"] is not None]
        value = statistics.median(values) if values else None
        op, target = first["target"].split()
        met = None if value is None else (value >= float(target) if op == ">=" else
                                          value <= float(target))  # fmt: skip
        out[key] = {"value": value, "target": first["target"], "met": met,
                    "rounds": values}  # fmt: skip
    return out


# -- the report ----------------------------------------------------------------------------------
def _get(results: dict, server: str, run: str, key: str) -> float | None:
    try:
        return results[server]["runs"][run][key]
    except (KeyError, TypeError):
        return None


def ratios(results: dict) -> dict[str, dict[str, Any]]:
    """The targets: ``value`` is None when a server it needs was not measured."""
    custom, fastapi, cli = "custom-httptools", "fastapi-inprocess", "fastapi-cli"

    def quotient(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    rss = {name: results[name]["rss_kib"] for name in (custom, fastapi)
           if "rss_kib" in results.get(name, {})}  # fmt: skip
    table = {
        "throughput_vs_fastapi": (quotient(_get(results, custom, "mix", "rps"),
                                           _get(results, fastapi, "mix", "rps")), ">=", 5.0),
        "p95_vs_fastapi": (quotient(_get(results, custom, "mix", "p95_ms"),
                                    _get(results, fastapi, "mix", "p95_ms")), "<=", 0.2),
        "rss_vs_fastapi": (quotient(rss.get(custom), rss.get(fastapi)), "<=", 0.5),
        "context_vs_cli_bridge": (quotient(_get(results, custom, "context", "rps"),
                                           _get(results, cli, "context", "rps")), ">=", 100.0),
        "limit_vs_health": (quotient(_get(results, "limit", "health", "rps"),
                                     _get(results, custom, "health", "rps")), "<=", 2.0),
    }  # fmt: skip
    out = {}
    for key, (value, op, target) in table.items():
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        out[key] = {"value": value, "target": f"{op} {target:g}", "met": met}
    return out


def report(results: dict, targets: dict, info: dict, args: argparse.Namespace) -> str:
    lines = [
        f"machine: nproc={info['nproc']}, CPU {info['cpu']}, Python {info['python']}, "
        f"{info['wrk']}; load average {' '.join(info['loadavg_at_start'])} at start, "
        f"{' '.join(info['loadavg_at_end'])} at end",
        f"wrk: 1 thread, {args.connections} connections, {args.duration} s per run "
        f"(CLI bridge: {args.cli_connections} connections, {args.cli_duration} s); server on "
        f"CPU {args.server_cpu}, wrk on CPU {args.client_cpu}; access log {args.access_log}; "
        f"figures: the median of {args.rounds} round(s), servers in rotating order",
        "",
        "| server | run | req/s | p50 ms | p95 ms | p99 ms | errors | RSS MiB (peak) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, result in results.items():
        if "error" in result:
            lines.append(f"| {name} | failed: {result['error'][:80]} | | | | | | |")
            continue
        memory = f"{result['rss_kib'] / 1024:.1f} ({result['hwm_kib'] / 1024:.1f})"
        for run, r in result["runs"].items():
            lines.append(
                f"| {name} | {run} | {r['rps']:,.1f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['errors']} | {memory} |"
            )
    names = {
        "throughput_vs_fastapi": "custom-httptools / FastAPI in-process, mix req/s",
        "p95_vs_fastapi": "custom-httptools / FastAPI in-process, mix p95",
        "rss_vs_fastapi": "custom-httptools / FastAPI in-process, RSS",
        "context_vs_cli_bridge": "custom-httptools / FastAPI CLI bridge, context req/s",
        "limit_vs_health": "limit / custom-httptools, health req/s",
        "limit_vs_health_paired": "limit / custom-httptools, health req/s, paired runs",
    }
    lines += ["", "| ratio (median) | value | per round (per pair) | target | |",
              "| --- | ---: | --- | --- | --- |"]  # fmt: skip
    for key, t in targets.items():
        value = "n/a" if t["value"] is None else f"{t['value']:,.2f}x"
        spread = ", ".join(f"{v:,.2f}" for v in t.get("rounds", []))
        verdict = {None: "not measured", True: "met", False: "**NOT met**"}[t["met"]]
        lines.append(f"| {names[key]} | {value} | {spread} | {t['target']}x | {verdict} |")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------------
def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < minimum:
        bound = f"must be at least {minimum}" if minimum else "must not be negative"
        raise argparse.ArgumentTypeError(f"{bound}, not {value}")
    return value


def _positive(text: str) -> int:
    return _whole_number(text, 1)


def _count(text: str) -> int:
    return _whole_number(text, 0)


def _servers(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown server {', '.join(unknown) or '(none)'}; choose from {', '.join(SERVERS)}"
        )
    return list(dict.fromkeys(names))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=_positive, default=5, help="seconds per run (5)")
    parser.add_argument("--connections", type=_positive, default=64, help="wrk connections (64)")
    parser.add_argument("--rounds", type=_positive, default=3,
                        help="rounds of every server in turn; medians reported (3)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1, help="seconds of mix first (1; 0: none)")
    parser.add_argument(
        "--pairs",
        type=_count,
        default=5,
        help="health runs of custom-httptools and the limit in pairs (5; 0: none)",
    )
    parser.add_argument("--cli-duration", type=_positive, default=10, help="CLI bridge runs (10)")
    parser.add_argument("--cli-connections", type=_positive, default=1)
    parser.add_argument("--servers", type=_servers, default=list(SERVERS),
                        help=f"comma-separated subset of {','.join(SERVERS)}")  # fmt: skip
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--workdir", help="where the project copies go (default: a temp dir)")
    parser.add_argument("--profile", type=Path, help="cProfile the custom servers into DIR")
    parser.add_argument("--wrk", default=shutil.which("wrk"), help="the wrk binary")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--access-log", choices=("off", "on"), default="off",
                        help="every server's access log, alike (default: off)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.wrk or not Path(args.wrk).exists():
        parser.error("wrk not found (Debian package 'wrk'); or pass --wrk PATH")
    if not shutil.which("taskset"):
        parser.error("taskset not found (package util-linux)")
    cpus = os.sched_getaffinity(0)
    for flag in ("server_cpu", "client_cpu"):
        if getattr(args, flag) not in cpus:
            parser.error(f"--{flag.replace('_', '-')}: CPU {getattr(args, flag)} is not usable")
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = bench_http.machine()
    with tempfile.TemporaryDirectory(prefix="bench-migration-", dir=args.workdir) as tmp:
        try:
            template, ids = make_project(Path(tmp))
        except BenchError as exc:
            print(f"bench_migration: error: {exc}", file=sys.stderr)
            return 1
        rounds: dict[str, list[dict]] = {name: [] for name in args.servers}
        for index in range(args.rounds):
            # Rotated, so no server always follows the same one; the CLI bridge (a
            # process per call, seconds a request) is measured in the first round only.
            turn = index % len(args.servers)
            order = args.servers[turn:] + args.servers[:turn]
            for name in order:
                if index > 0 and (name == "fastapi-cli" or "error" in rounds[name][-1]):
                    continue
                print(f"round {index + 1}/{args.rounds} {name}:", file=sys.stderr, flush=True)
                try:
                    rounds[name].append(measure(name, template, ids, args, index + 1))
                except BenchError as exc:
                    print(f"bench_migration: {name}: {exc}", file=sys.stderr)
                    rounds[name].append({"error": str(exc)})
        paired: dict[str, Any] | None = None
        if args.pairs > 0 and {"custom-httptools", "limit"} <= set(args.servers):
            print(f"paired health, {args.pairs} pairs:", file=sys.stderr, flush=True)
            try:
                paired = paired_health(template, ids, args)
            except BenchError as exc:
                print(f"bench_migration: paired health: {exc}", file=sys.stderr)
                paired = {"error": str(exc)}
    results = {name: median_result(runs) for name, runs in rounds.items()}
    info["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    targets = round_ratios(rounds)
    if paired is not None and "error" not in paired:
        targets["limit_vs_health_paired"] = paired_target(paired)
    print(report(results, targets, info, args))
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        Path(args.json).write_text(json.dumps(
            {"machine": info, "settings": settings, "servers": results, "ratios": targets,
             "rounds": rounds, "paired_health": paired},
            indent=2))  # fmt: skip
    failed = any("error" in r for runs in rounds.values() for r in runs)
    return 1 if failed or (paired is not None and "error" in paired) else 0


if __name__ == "__main__":
    sys.exit(main())

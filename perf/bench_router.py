"""Benchmark Router.resolve on a 40-route REST table: ``--impl c`` or ``--impl py``.

Both twins in one suite (benchmarks ``router_mix[c]``, ``router_mix[py]``, ...)::

    python perf/bench_router.py -o /tmp/router.json

One twin per file (bare names, ``router_impl`` metadata), to compare::

    python perf/bench_router.py --impl c -o /tmp/router_c.json
    python perf/bench_router.py --impl py -o /tmp/router_py.json
    python -m pyperf compare_to /tmp/router_py.json /tmp/router_c.json

Table: the llmstruct v1 contract (``/api/v1/system/...``, ``/project/...``,
``/tasks/{id}``, ``/query``, ``/ws``) grown to 40 routes the way such APIs grow:
sub-resources (``/tasks/{id}/comments/{comment_id}``), literal siblings of
parameters (``/tasks/search`` beside ``/tasks/{id}``), two-parameter paths.
22 templates are exact, 18 parametrised.

Requests (fixed seed, built before timing): 20k lookups, 50% exact paths, 35%
parametrised (ids, modes, file paths with ``%2F``), 10% unknown paths (404),
5% known paths with a method they do not allow (405), with request methods as
such an API sees them (mostly GET). ``router_mix`` replays all of them; the
other benchmarks one kind each. Times are per lookup.
"""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path

import pyperf
from twins import twin_runner, twins

# Bench this checkout and its in-place build, whatever llmstruct is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 20240612
N_LOOKUPS = 20_000
MIX = {"exact": 0.50, "param": 0.35, "404": 0.10, "405": 0.05}

ROUTES = [
    ("GET", "/api/v1/system/health"),
    ("GET", "/api/v1/system/metrics"),
    ("GET", "/api/v1/system/version"),
    ("GET", "/api/v1/system/config"),
    ("GET", "/openapi.json"),
    ("GET", "/api/v1/ws"),
    ("GET", "/api/v1/project/info"),
    ("POST", "/api/v1/project/scan"),
    ("GET", "/api/v1/project/scan/status"),
    ("GET", "/api/v1/project/struct"),
    ("GET", "/api/v1/project/files"),
    ("GET", "/api/v1/project/languages"),
    ("GET", "/api/v1/project/dependencies"),
    ("GET", "/api/v1/project/callgraph"),
    ("POST", "/api/v1/context"),
    ("GET", "/api/v1/tasks"),
    ("POST", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/search"),
    ("GET", "/api/v1/tasks/stats"),
    ("POST", "/api/v1/query"),
    ("GET", "/api/v1/sessions"),
    ("POST", "/api/v1/sessions"),
    ("GET", "/api/v1/project/context/{mode}"),
    ("GET", "/api/v1/project/files/{path}"),
    ("GET", "/api/v1/project/modules/{module}"),
    ("GET", "/api/v1/project/modules/{module}/functions"),
    ("GET", "/api/v1/project/modules/{module}/functions/{name}"),
    ("GET", "/api/v1/project/modules/{module}/classes/{name}"),
    ("GET", "/api/v1/tasks/{id}"),
    ("PATCH", "/api/v1/tasks/{id}"),
    ("DELETE", "/api/v1/tasks/{id}"),
    ("GET", "/api/v1/tasks/{id}/history"),
    ("GET", "/api/v1/tasks/{id}/comments"),
    ("POST", "/api/v1/tasks/{id}/comments"),
    ("DELETE", "/api/v1/tasks/{id}/comments/{comment_id}"),
    ("GET", "/api/v1/sessions/{id}"),
    ("DELETE", "/api/v1/sessions/{id}"),
    ("GET", "/api/v1/sessions/{id}/context"),
    ("GET", "/api/v1/query/{id}"),
    ("GET", "/api/v1/scans/{scan_id}/progress"),
]
assert len(ROUTES) == 40

MODES = ("minimal", "focused", "full", "session", "MINIMAL")
MODULES = ("llmstruct.cli", "llmstruct.engine.scanner", "pkg.sub.mod", "app")
FILES = ("src%2Fmain.py", "llmstruct%2Fcli.py", "README.md", "a%20b.txt")
METHODS_SEEN = ("GET",) * 8 + ("POST", "PATCH", "DELETE")


def fill(template: str, rng: random.Random) -> str:
    """A request path for ``template`` with realistic parameter values."""
    out = []
    for seg in template.split("/"):
        if seg in ("{id}", "{scan_id}", "{comment_id}"):
            seg = str(rng.randint(1, 100_000))
        elif seg == "{mode}":
            seg = rng.choice(MODES)
        elif seg == "{path}":
            seg = rng.choice(FILES)
        elif seg == "{module}":
            seg = rng.choice(MODULES)
        elif seg == "{name}":
            seg = rng.choice(("main", "Router", "build_context", "__init__"))
        out.append(seg)
    return "/".join(out)


def build_lookups(router_cls: type) -> dict[str, list[tuple[str, str]]]:
    """``{kind: [(method, path), ...]}`` plus ``"mix"``, all in one seeded shuffle."""
    rng = random.Random(SEED)
    router = router_cls()
    for method, template in ROUTES:
        router.add(method, template, template)
    exact = [(m, t) for m, t in ROUTES if "{" not in t]
    param = [(m, t) for m, t in ROUTES if "{" in t]
    unknown = ("/api/v1/nope", "/api/v2/tasks/1", "/favicon.ico", "/api/v1/tasks/1/x/y",
               "/api/v1/project/modules/m/functions/f/extra", "/api/v1/system/health/")  # fmt: skip
    kinds: dict[str, list[tuple[str, str]]] = {kind: [] for kind in MIX}
    mix: list[tuple[str, str]] = []
    for kind in rng.choices(list(MIX), weights=list(MIX.values()), k=N_LOOKUPS):
        if kind == "exact":
            lookup = rng.choice(exact)
        elif kind == "param":
            method, template = rng.choice(param)
            lookup = (method, fill(template, rng))
        elif kind == "404":
            lookup = (rng.choice(METHODS_SEEN), rng.choice(unknown))
        else:
            method, template = rng.choice(ROUTES)
            path = fill(template, rng)
            allowed = router.allowed_methods(path)
            lookup = (rng.choice([m for m in ("PUT", "POST", "DELETE") if m not in allowed]), path)
        status = router.resolve(*lookup).status
        assert status == {"exact": 200, "param": 200, "404": 404, "405": 405}[kind], lookup
        kinds[kind].append(lookup)
        mix.append(lookup)
    kinds["miss"] = kinds.pop("404") + kinds.pop("405")
    kinds["mix"] = mix
    return kinds


def time_resolve(loops: int, router_cls: type, lookups: list[tuple[str, str]]) -> float:
    """Resolve every lookup ``loops`` times on a router built once; return the elapsed seconds."""
    router = router_cls()
    for method, template in ROUTES:
        router.add(method, template, template)
    resolve = router.resolve
    elapsed = 0.0
    for _ in range(loops):
        t0 = pyperf.perf_counter()
        for method, path in lookups:
            resolve(method, path)
        elapsed += pyperf.perf_counter() - t0
    return elapsed


def main() -> None:
    runner, args = twin_runner("router")
    lookups = build_lookups(importlib.import_module("llmstruct._ext._router_py").Router)
    runner.metadata["router_routes"] = str(len(ROUTES))
    runner.metadata["router_lookups"] = ", ".join(f"{k}={len(v)}" for k, v in lookups.items())
    for module, suffix in twins("router", args):
        for kind in ("mix", "exact", "param", "miss"):
            runner.bench_time_func(
                f"router_{kind}{suffix}",
                time_resolve,
                module.Router,
                lookups[kind],
                inner_loops=len(lookups[kind]),
            )

if __name__ == "__main__":
    main()

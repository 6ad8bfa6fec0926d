"""FOCUSED context latency on the struct of the whole standard library.

Two pyperf benchmarks, each value one ``build_context`` call (loops=1) so that
percentiles are per request:

* ``context_focused_uncached``: the result cache is cleared before every call,
  so each one ranks (BM25 + personalised PageRank), assembles and renders;
* ``context_focused_cached``: the same requests answered from the LRU cache.

Queries rotate through a fixed list of questions; the struct is loaded (and its
index built) before timing: the targets are per request "after the struct is
loaded". Prints p50/p95 of both at the end.

Run:  python perf/bench_context.py -o perf/results/context.json
      (first run scans a private copy of the standard library: ~30 s)
"""

from __future__ import annotations

import itertools
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pyperf

from llmstruct.engine.context import ContextManager
from llmstruct.engine.project import scan_to_struct
from llmstruct.engine.scanner import ScanOptions

QUESTIONS = [
    "how do I parse an email message from a string",
    "json encoder for objects that are not serializable",
    "create a task in asyncio and wait for it",
    "rotating log file handler",
    "read a gzip compressed file",
    "percent-encode a URL query string",
    "thread pool executor map",
    "parse command line arguments with subcommands",
]


def _struct() -> Path:
    root = Path(tempfile.gettempdir()) / "llmstruct-bench-python3-stdlib"
    if not root.exists():
        source = Path(sysconfig.get_paths()["stdlib"])
        shutil.copytree(source, root, ignore=shutil.ignore_patterns("site-packages", "__pycache__"))
    if not (root / "struct.json").exists():
        (root / "struct.json").write_bytes(scan_to_struct(ScanOptions(root)).data)
    return root


def bench(loops: int, manager: ContextManager, cached: bool, queries) -> float:
    total = 0.0
    for _ in range(loops):
        query = next(queries)
        if cached:
            manager.build_context("FOCUSED", query, 4000)  # make sure it is there
        else:
            manager.cache.clear()
        start = time.perf_counter()
        manager.build_context("FOCUSED", query, 4000)
        total += time.perf_counter() - start
    return total


def main() -> None:
    runner = pyperf.Runner(processes=4, values=60, warmups=3, loops=1)
    runner.parse_args()
    root = _struct()
    manager = ContextManager(root / "struct.json", root=root)
    manager.index()  # load and index before any timing
    uncached = runner.bench_time_func(
        "context_focused_uncached", bench, manager, False, itertools.cycle(QUESTIONS)
    )
    cached = runner.bench_time_func(
        "context_focused_cached", bench, manager, True, itertools.cycle(QUESTIONS)
    )
    if uncached is None or cached is None:
        return  # a pyperf worker process
    for name, result, target in (("uncached", uncached, 10.0), ("cached", cached, 0.1)):
        p50, p95 = (result.percentile(p) * 1000 for p in (50, 95))
        print(
            f"FOCUSED {name:<9} p50 {p50:8.3f} ms  p95 {p95:8.3f} ms  (target p95 <= {target} ms)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

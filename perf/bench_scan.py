"""Scan throughput on the Python standard library, beside bare tree-sitter.

Three benchmarks in one run, on the same files and the same number of worker
processes:

* ``bare_parse_tags[stdlib]``: read each file, tree-sitter parse, run the
  grammar's own ``tags.scm`` query (the floor: no extraction, no output);
* ``scan_cold[stdlib]``: ``llmstruct scan`` minus the CLI: discovery, parse,
  extraction, per-symbol token counts, call resolution, struct.json serialised,
  with the cache disabled;
* ``scan_warm[stdlib]``: the same with a warm cache (nothing is parsed).

The tree is copied to a temporary directory first (minus ``site-packages``), so
the warm cache is never written into the interpreter's own directory.

Run:  python perf/bench_scan.py -o perf/results/scan.json
      python perf/bench_scan.py --root /path/to/tree --workers 2
The last lines print files/s, MB/s and the cold/bare and warm/cold ratios.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pyperf

from llmstruct.engine.discovery import discover
from llmstruct.engine.project import scan_to_struct
from llmstruct.engine.scanner import ScanOptions

_bare_state: dict = {}


def _bare_init() -> None:
    import tree_sitter as ts
    import tree_sitter_python as tsp

    language = ts.Language(tsp.language())
    tags = (Path(tsp.__file__).parent / "queries" / "tags.scm").read_text()
    _bare_state["parser"] = ts.Parser(language)
    _bare_state["query"] = ts.Query(language, tags)
    _bare_state["cursor"] = ts.QueryCursor


def _bare_batch(root: str, paths: list[str]) -> int:
    if not _bare_state:
        _bare_init()
    parser, query, cursor = _bare_state["parser"], _bare_state["query"], _bare_state["cursor"]
    captured = 0
    for path in paths:
        with open(os.path.join(root, path), "rb") as handle:
            tree = parser.parse(handle.read())
        captured += sum(len(nodes) for nodes in cursor(query).captures(tree.root_node).values())
    return captured


def bare_parse_tags(loops: int, root: Path, files: list[str], workers: int) -> float:
    chunks = [files[i : i + 32] for i in range(0, len(files), 32)]
    total = 0.0
    for _ in range(loops):
        start = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            list(pool.map(_bare_batch, [str(root)] * len(chunks), chunks))
        total += time.perf_counter() - start
    return total


def scan(loops: int, root: Path, workers: int, use_cache: bool) -> float:
    total = 0.0
    for _ in range(loops):
        start = time.perf_counter()
        build = scan_to_struct(ScanOptions(root, use_cache=use_cache, workers=workers))
        with tempfile.TemporaryFile() as out:
            out.write(build.data)
        total += time.perf_counter() - start
    return total


def _copy_tree(source: Path) -> Path:
    """A private copy of the corpus: pyperf worker processes share it by path."""
    target = Path(tempfile.gettempdir()) / f"llmstruct-bench-{source.name}"
    if not target.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("site-packages"))
    return target


def main() -> None:
    runner = pyperf.Runner(processes=1, values=3, warmups=1, loops=1)
    runner.argparser.add_argument("--root", default=sysconfig.get_paths()["stdlib"])
    runner.argparser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = runner.parse_args()
    root = _copy_tree(Path(args.root))
    files = [f.path for f in discover(root).files]
    megabytes = sum((root / f).stat().st_size for f in files) / 1e6
    runner.metadata["corpus_files"] = str(len(files))
    runner.metadata["corpus_mb"] = f"{megabytes:.1f}"
    runner.metadata["workers"] = str(args.workers)

    # Prime the cache that scan_warm reads (scan_cold never touches it).
    scan_to_struct(ScanOptions(root, workers=args.workers))
    bare = runner.bench_time_func(
        "bare_parse_tags[stdlib]", bare_parse_tags, root, files, args.workers
    )
    cold = runner.bench_time_func("scan_cold[stdlib]", scan, root, args.workers, False)
    warm = runner.bench_time_func("scan_warm[stdlib]", scan, root, args.workers, True)
    if not all((bare, cold, warm)):
        return  # a pyperf worker process: only the main process reports
    b, c, w = (bench.mean() for bench in (bare, cold, warm))
    print(f"\n{len(files)} files, {megabytes:.1f} MB, {args.workers} workers", file=sys.stderr)
    for name, seconds in (("bare parse+tags", b), ("scan cold", c), ("scan warm", w)):
        print(
            f"  {name:<16} {seconds:7.3f} s  {len(files) / seconds:8.0f} files/s  "
            f"{megabytes / seconds:6.1f} MB/s",
            file=sys.stderr,
        )
    print(f"  cold / bare = {c / b:.2f}x (target <= 1.5x)", file=sys.stderr)
    print(f"  warm / cold = {100 * w / c:.1f}% (target <= 5%)", file=sys.stderr)


if __name__ == "__main__":
    main()

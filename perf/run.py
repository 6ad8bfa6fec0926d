"""Run every pyperf benchmark in perf/ into one result file, or check it against a baseline.

::

    python perf/run.py -o perf/results/base.json         # every benchmark, one JSON suite
    python perf/run.py --fast -o /tmp/quick.json          # pyperf's --fast for each script
    python perf/run.py --compare perf/results/base.json   # run again, report regressions
    python perf/run.py --bench bench_lru --bench bench_router --compare base.json

Which scripts: ``perf/bench_*.py`` that import ``pyperf`` (``bench_lru``,
``bench_router``, ``bench_assemble``, ``bench_context``, ``bench_scan`` when this was
written); the load generators (``bench_http``, ``bench_migration``) are not pyperf
scripts and are left out. ``--bench`` picks some by name, or names any pyperf script
by path. Each runs in its own process with this checkout first on ``PYTHONPATH``,
writes its own pyperf file into a temporary directory, and the benchmarks of all of
them are merged into one ``BenchmarkSuite`` (what ``python -m pyperf convert --add``
does), saved to ``-o`` (default ``perf/results/run-<UTC time>.json``). ``--fast``
is handed to every script; note that pyperf's ``--fast`` runs at least 3 processes,
so ``bench_scan`` (1 process by default, ~15 s a scan) takes longer with it, not less.

``--compare BASELINE``: after the run, ``python -m pyperf compare_to BASELINE NEW
--table`` prints the comparison, and a benchmark present in both is a regression when
its mean is more than ``--threshold`` times the baseline's (default 1.10) and the
difference is significant by the test ``compare_to`` uses (two-sample t-test,
``pyperf._compare.is_significant_benchs``). Benchmarks in only one file are listed.

Exit status: 0 done (no regression); 1 a regression; 2 bad input or a run that
could not be made (no such baseline, not a pyperf file, an existing -o file, a
benchmark script that failed), with one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PERF = Path(__file__).resolve().parent
CHECKOUT = PERF.parent
EXIT_REGRESSION = 1
EXIT_USAGE = 2


class RunError(Exception):
    """Bad input or a failed benchmark: one line on stderr, exit 2."""


# -- which scripts ---------------------------------------------------------------------------------
def is_pyperf_script(path: Path) -> bool:
    return re.search(r"^import pyperf\b", path.read_text(encoding="utf-8"), re.M) is not None


def discover() -> list[Path]:
    return [path for path in sorted(PERF.glob("bench_*.py")) if is_pyperf_script(path)]


def select(names: list[str] | None) -> list[Path]:
    if not names:
        return discover()
    chosen = []
    for name in names:
        path = Path(name) if name.endswith(".py") else PERF / f"{name.removesuffix('.py')}.py"
        if not path.is_file():
            known = ", ".join(p.stem for p in discover())
            raise RunError(f"--bench {name}: no such benchmark (known: {known})")
        if not is_pyperf_script(path):
            raise RunError(f"--bench {name}: not a pyperf script (it does not import pyperf)")
        chosen.append(path.resolve())
    return chosen


# -- running ---------------------------------------------------------------------------------------
def run_scripts(scripts: list[Path], fast: bool, extra: list[str]) -> Any:
    """Run each script into its own file; the merged ``pyperf.BenchmarkSuite``."""
    import pyperf

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
    suite = None
    with tempfile.TemporaryDirectory(prefix="perf-run-") as tmp:
        for script in scripts:
            out = Path(tmp) / f"{script.stem}.json"
            command = [sys.executable, str(script), "-o", str(out), *extra]
            if fast:
                command.append("--fast")
            print(f"== {script.name}: {' '.join(command[1:])}", flush=True)
            started = time.monotonic()
            code = subprocess.run(command, cwd=script.parent, env=env).returncode
            if code != 0 or not out.exists():
                raise RunError(f"{script.name} failed (exit {code})")
            print(f"== {script.name}: {time.monotonic() - started:.0f} s", flush=True)
            part = pyperf.BenchmarkSuite.load(str(out))
            if suite is None:
                suite = part
                continue
            for bench in part.get_benchmarks():
                if bench.get_name() in suite.get_benchmark_names():
                    raise RunError(f"two scripts have a benchmark named {bench.get_name()!r}")
                suite.add_benchmark(bench)
    return suite


def load_suite(path: str, what: str) -> Any:
    import pyperf

    if not Path(path).is_file():
        raise RunError(f"{what} {path}: no such file")
    try:
        suite = pyperf.BenchmarkSuite.load(path)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"{what} {path}: not a pyperf result file ({reason})") from None
    if not suite.get_benchmarks():
        raise RunError(f"{what} {path}: no benchmarks in it")
    return suite


# -- comparing -------------------------------------------------------------------------------------
def regressions(base: Any, new: Any, threshold: float) -> tuple[list[dict], list[str]]:
    """``(rows for the benchmarks in both, names in only one file)``."""
    from pyperf._compare import is_significant_benchs

    base_names, new_names = set(base.get_benchmark_names()), set(new.get_benchmark_names())
    rows = []
    for name in sorted(base_names & new_names):
        before, after = base.get_benchmark(name), new.get_benchmark(name)
        ratio = after.mean() / before.mean()
        significant, _ = is_significant_benchs(before, after)
        rows.append({"name": name, "ratio": ratio, "significant": significant,
                     "regression": significant and ratio > threshold})  # fmt: skip
    return rows, sorted(base_names ^ new_names)


def compare(baseline: str, new: str, threshold: float) -> int:
    base_suite, new_suite = load_suite(baseline, "baseline"), load_suite(new, "result")
    subprocess.run([sys.executable, "-m", "pyperf", "compare_to", baseline, new, "--table"])
    rows, unpaired = regressions(base_suite, new_suite, threshold)
    if not rows:
        raise RunError(f"no benchmark in common between {baseline} and {new}")
    for row in rows:
        verdict = "REGRESSION" if row["regression"] else "ok"
        noise = "" if row["significant"] else " (not significant)"
        print(f"{row['name']:<36} {row['ratio']:6.3f}x the baseline{noise}: {verdict}")
    for name in unpaired:
        where = "baseline" if name in base_suite.get_benchmark_names() else "new run"
        print(f"{name:<36} only in the {where}")
    slower = [row["name"] for row in rows if row["regression"]]
    if slower:
        print(f"{len(slower)} regression(s) over {threshold:g}x: {', '.join(slower)}")
        return EXIT_REGRESSION
    print(f"no significant regression over {threshold:g}x in {len(rows)} benchmarks")
    return 0


# -- command line ----------------------------------------------------------------------------------
def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 1.0 (a slowdown factor), not {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="pass pyperf's --fast to each script")
    parser.add_argument("-o", "--output", help="the merged result (default perf/results/run-*)")
    parser.add_argument("--compare", metavar="BASELINE", help="compare the new run with this")
    parser.add_argument(
        "--threshold", type=_threshold, default=1.10,
        help="slowdown factor that counts as a regression (default 1.10)",
    )  # fmt: skip
    parser.add_argument(
        "--bench", action="append", metavar="NAME",
        help="only this benchmark script (a name in perf/ or a path; repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--pyperf-arg", action="append", default=[], metavar="ARG",
        help="one more argument for every script, e.g. --pyperf-arg=--quiet (repeatable)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        scripts = select(args.bench)
        if args.compare:
            load_suite(args.compare, "baseline")  # a bad baseline fails before the long run
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        output = Path(args.output or PERF / "results" / f"run-{stamp}.json")
        if output.exists():
            raise RunError(f"{output} exists: remove it or choose another -o")
        output.parent.mkdir(parents=True, exist_ok=True)
        suite = run_scripts(scripts, args.fast, args.pyperf_arg)
        suite.dump(str(output))
        print(f"wrote {output}: {len(suite.get_benchmarks())} benchmarks from {len(scripts)} "
              "scripts")  # fmt: skip
        return compare(args.compare, str(output), args.threshold) if args.compare else 0
    except RunError as exc:
        print(f"perf/run.py: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark drivers run end to end and write the JSON they promise.

``perf/bench_migration.py`` on a small subset (the custom server and the fixed-response
limit, 1 s runs) and ``perf/run.py`` on a tiny pyperf script written here, with
pyperf told to take a few values only. These check what the scripts produce and how
they fail, never a figure: the machine is shared, so nothing here asserts on time.
``HANG`` bounds each process only so that a broken script cannot hang the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PERF = REPO / "perf"
HANG = 120.0  # upper bound on one script; never asserted on
RUN_KEYS = {"requests", "rps", "p50_ms", "p95_ms", "p99_ms", "non_2xx", "socket_errors", "errors"}
TARGETS = {"throughput_vs_fastapi", "p95_vs_fastapi", "rss_vs_fastapi", "context_vs_cli_bridge",
           "limit_vs_health", "limit_vs_health_paired"}  # fmt: skip
TINY = """\
import pyperf

runner = pyperf.Runner()
runner.bench_func("tiny_sum", sum, range(200))
runner.bench_func("tiny_sorted", sorted, list(range(100, 0, -1)))
"""
# A few values from one worker process: enough for compare_to's t-test, quick to make.
QUICK = ["--pyperf-arg=--processes=1", "--pyperf-arg=--values=3", "--pyperf-arg=--warmups=1",
         "--pyperf-arg=--loops=1000", "--pyperf-arg=--quiet"]  # fmt: skip


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PERF / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=HANG)  # fmt: skip


def assert_one_line_error(done: subprocess.CompletedProcess, text: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert text in last, done.stderr


# -- bench_migration.py ---------------------------------------------------------------------------
def _cpus() -> tuple[int, int]:
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[-1], cpus[0]  # server, client (the same core on a one-core machine)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (Debian: wrk)")
@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed")
def test_bench_migration_measures_the_custom_server_and_the_limit(tmp_path: Path) -> None:
    pytest.importorskip("httptools", reason="the custom-httptools server needs httptools")
    pytest.importorskip("uvloop", reason="both servers run on uvloop")
    out = tmp_path / "migration.json"
    server, client = _cpus()
    done = run("bench_migration.py", "--servers", "custom-httptools,limit", "--duration", "1",
               "--rounds", "2", "--pairs", "3", "--warmup", "0", "--server-cpu", str(server),
               "--client-cpu", str(client), "--json", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert set(result) == {"machine", "settings", "servers", "ratios", "rounds", "paired_health"}
    # Two rounds of each server, and the reported figures are their medians.
    rounds = result["rounds"]
    assert [len(rounds[name]) for name in ("custom-httptools", "limit")] == [2, 2]
    for name, runs in rounds.items():
        for run_name, figures in result["servers"][name]["runs"].items():
            rates = [r["runs"][run_name]["rps"] for r in runs]
            assert figures["rps"] == pytest.approx(sum(rates) / 2), (name, run_name)
            assert figures["requests"] == sum(r["runs"][run_name]["requests"] for r in runs)
    assert "loadavg_at_end" in result["machine"]
    servers = result["servers"]
    assert list(servers) == ["custom-httptools", "limit"]
    custom, limit = servers["custom-httptools"], servers["limit"]
    assert list(custom["runs"]) == ["mix", "health", "task", "info", "context", "create"]
    assert list(limit["runs"]) == ["mix", "health"]
    for entry in (custom, limit):
        assert entry["rss_kib"] > 0 and entry["hwm_kib"] >= entry["rss_kib"]
        for figures in entry["runs"].values():
            assert set(figures) == RUN_KEYS
            assert figures["requests"] > 0
    # Every request of the mix (201 for the creates included) is a success.
    assert custom["errors"] == 0, custom["runs"]
    assert set(result["ratios"]) == TARGETS
    health = result["ratios"]["limit_vs_health"]
    assert len(health["rounds"]) == 2
    assert health["value"] == pytest.approx(sum(health["rounds"]) / 2)
    # Health once more in alternating pairs: each pair's ratio from its own figures,
    # the judged value their median.
    pairs = result["paired_health"]["pairs"]
    assert len(pairs) == 3 and result["paired_health"]["errors"] == 0
    for pair in pairs:
        assert pair["custom-httptools"] > 0 and pair["limit"] > 0
        assert pair["ratio"] == pytest.approx(pair["limit"] / pair["custom-httptools"])
    paired = result["ratios"]["limit_vs_health_paired"]
    assert paired["rounds"] == [pair["ratio"] for pair in pairs]
    assert paired["value"] == sorted(paired["rounds"])[1]
    assert paired["met"] == (paired["value"] <= 2.0)
    assert "| limit / custom-httptools, health req/s, paired runs |" in done.stdout
    # The FastAPI servers were not asked for: their ratios say so instead of guessing.
    assert result["ratios"]["throughput_vs_fastapi"] == {
        "value": None, "target": ">= 5", "met": None, "rounds": []}  # fmt: skip
    assert "| custom-httptools | context |" in done.stdout


def test_bench_migration_rejects_a_negative_pair_count() -> None:
    done = run("bench_migration.py", "--pairs", "-1")
    assert_one_line_error(done, "--pairs: must not be negative")


def test_bench_migration_rejects_an_unknown_server() -> None:
    done = run("bench_migration.py", "--servers", "custom-httptools,nginx")
    assert_one_line_error(done, "unknown server nginx")


# -- run.py ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(the tiny pyperf script, its result saved by run.py)``, made once."""
    where = tmp_path_factory.mktemp("perf-run")
    script = where / "bench_tiny.py"
    script.write_text(TINY)
    out = where / "base.json"
    done = run("run.py", "--bench", str(script), *QUICK, "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return script, out


def test_run_saves_one_pyperf_suite(baseline: tuple[Path, Path]) -> None:
    import pyperf

    suite = pyperf.BenchmarkSuite.load(str(baseline[1]))
    assert sorted(suite.get_benchmark_names()) == ["tiny_sorted", "tiny_sum"]
    assert all(bench.get_nvalue() >= 2 for bench in suite.get_benchmarks())


def test_run_compare_passes_within_the_threshold(
    baseline: tuple[Path, Path], tmp_path: Path
) -> None:
    script, base = baseline
    out = tmp_path / "new.json"
    # A threshold no real slowdown reaches: the run itself cannot fail the comparison.
    done = run("run.py", "--bench", str(script), *QUICK, "-o", str(out), "--compare", str(base),
               "--threshold", "1000")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.exists()
    assert "no significant regression over 1000x in 2 benchmarks" in done.stdout


def test_run_compare_fails_on_a_regression(baseline: tuple[Path, Path], tmp_path: Path) -> None:
    script, base = baseline
    # A baseline 1000 times faster than anything the run can measure.
    data = json.loads(base.read_text())
    for bench in data["benchmarks"]:
        for one in bench["runs"]:
            if "values" in one:
                one["values"] = [value / 1000 for value in one["values"]]
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps(data))
    done = run("run.py", "--bench", str(script), *QUICK, "-o", str(tmp_path / "new.json"),
               "--compare", str(fast))  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 regression(s) over 1.1x: tiny_sorted, tiny_sum" in done.stdout


def test_run_rejects_a_missing_baseline(tmp_path: Path) -> None:
    done = run("run.py", "--compare", str(tmp_path / "nope.json"))
    assert_one_line_error(done, "nope.json: no such file")


def test_run_rejects_a_corrupt_baseline(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"benchmarks": [')
    done = run("run.py", "--compare", str(broken))
    assert_one_line_error(done, "not a pyperf result file")


def test_run_rejects_a_script_that_is_not_pyperf() -> None:
    done = run("run.py", "--bench", "bench_http")
    assert_one_line_error(done, "not a pyperf script")


# -- instructions.py ------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["health", "lookup"])
def test_instructions_harness_answers_every_request_it_feeds(endpoint: str) -> None:
    # The part valgrind runs: it exits non-zero unless each request got one response.
    done = run("instructions.py", "--inner", "50", "--endpoint", endpoint)
    assert done.returncode == 0, done.stderr


def test_instructions_says_when_valgrind_is_missing(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(PERF / "instructions.py")], cwd=REPO,
                          env={**os.environ, "PATH": str(tmp_path)}, capture_output=True,
                          text=True, timeout=HANG)  # fmt: skip
    assert_one_line_error(done, "valgrind is not installed")

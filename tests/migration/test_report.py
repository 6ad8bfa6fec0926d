"""``migrate report``: percentiles from the proxy's HDR histograms, RSS, and the sheet's factors.

The stats document carries real encoded histograms (``LatencyHistogram``) of
known latencies; the expected percentiles are computed here from the sorted
samples, and the report's (decoded from the histograms) must agree within
HdrHistogram's precision (3 significant digits). The command runs for real
against ``FakeProxy``, which serves the document and the backends' RSS gauges.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest

from llmstruct.migration.report import THROUGHPUT_NOTE, build_report, format_table
from tests.migration.migrator_fakeproxy import FakeProxy, encoded_histogram
from tests.migration.migrator_procs import HANG, child_env

MIB = 2**20


def samples(seed: int, count: int, low_ms: float, high_ms: float) -> list[int]:
    """``count`` latencies in microseconds, log-uniform between the bounds."""
    rng = random.Random(seed)
    return [int(math.exp(rng.uniform(math.log(low_ms), math.log(high_ms))) * 1000)
            for _ in range(count)]  # fmt: skip


def nearest_rank(values: list[int], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)] / 1000.0


LEGACY = samples(1, 3000, 8.0, 60.0)
CUSTOM = samples(2, 1000, 1.0, 9.0)


def stats_document(custom: list[int] = CUSTOM, custom_errors: int = 4) -> dict:
    def block(values: list[int], errors: int, seconds: float) -> dict:
        return {"requests": len(values), "errors": errors, "upstream_failures": 0,
                "rps": len(values) / seconds, "latency_ms": None,
                "latency_hdr": encoded_histogram(values)}  # fmt: skip

    return {"mode": "split", "weight": 0.25, "started": 1000.0, "ended": 1100.0,
            "backends": {"legacy": block(LEGACY, 30, 100.0),
                         "custom": block(custom, custom_errors, 100.0)}}  # fmt: skip


def test_percentiles_come_from_the_histograms_and_factors_follow_the_sheet():
    report = build_report(stats_document(), {"legacy": 120 * MIB, "custom": 48 * MIB})
    legacy, custom = report["backends"]["legacy"], report["backends"]["custom"]
    for side, values in ((legacy, LEGACY), (custom, CUSTOM)):
        for p in (50, 95, 99):
            assert side["latency_ms"][f"p{p}"] == pytest.approx(nearest_rank(values, p), rel=2e-3)
    assert (legacy["requests"], legacy["errors"]) == (3000, 30)
    assert legacy["error_rate"] == pytest.approx(0.01)
    assert custom["error_rate"] == pytest.approx(0.004)
    assert (legacy["rps"], custom["rps"]) == (30.0, 10.0)
    factors = report["improvement_factors"]
    expected = nearest_rank(LEGACY, 95) / nearest_rank(CUSTOM, 95)
    assert factors["response_time"] == pytest.approx(expected, rel=4e-3)
    assert factors["response_time"] > 4  # these samples: the custom side is much faster
    assert factors["memory"] == pytest.approx(2.5)
    assert factors["throughput"] == pytest.approx(1 / 3)
    assert report["period_s"] == 100.0
    assert report["notes"]["throughput"] == THROUGHPUT_NOTE


def test_missing_inputs_give_null_factors_not_errors():
    report = build_report(stats_document(custom=[], custom_errors=0), {"legacy": None})
    custom = report["backends"]["custom"]
    assert custom["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert custom["error_rate"] is None and custom["rss_bytes"] is None
    assert report["improvement_factors"] == {
        "response_time": None, "memory": None, "throughput": 0.0,
    }  # fmt: skip
    table = format_table(report)
    assert "n/a" in table


def test_table_shows_every_figure_and_the_throughput_caveat():
    report = build_report(stats_document(), {"legacy": 120 * MIB, "custom": 48 * MIB}, "http://p")
    table = format_table(report)
    lines = table.splitlines()
    assert lines[0] == ("migration report: proxy http://p, mode split, weight 25% to custom, "
                        "over 100.0 s")  # fmt: skip
    row = {line[:26].strip(): line[26:].split() for line in lines[2:11]}
    assert row["requests"] == ["3000", "1000"]
    assert row["error rate"] == ["1.00", "%", "0.40", "%"]
    assert row["RSS MiB"] == ["120.0", "48.0"]
    p95 = report["backends"]["legacy"]["latency_ms"]["p95"]
    assert row["p95 latency ms"][0] == f"{p95:.2f}"
    assert any(line.startswith("memory") and line.endswith("2.50x") for line in lines)
    assert any(line.startswith("throughput *") and line.endswith("0.33x") for line in lines)
    assert f"* {THROUGHPUT_NOTE}" in table


def test_report_command_prints_json_and_a_table():
    with FakeProxy() as fake:
        fake.stats_document = stats_document()
        fake.rss = {"legacy": 100 * MIB, "custom": 25 * MIB}
        command = [sys.executable, "-m", "llmstruct", "migrate", "report", "--proxy", fake.url]
        as_json = subprocess.run([*command, "--json"], env=child_env(), capture_output=True,
                                 text=True, timeout=HANG)  # fmt: skip
        as_table = subprocess.run(command, env=child_env(), capture_output=True, text=True,
                                  timeout=HANG)  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["proxy"] == fake.url
    assert report["backends"]["legacy"]["rss_bytes"] == 100 * MIB
    assert report["improvement_factors"]["memory"] == pytest.approx(4.0)
    assert report["backends"]["custom"]["latency_ms"]["p99"] == pytest.approx(
        nearest_rank(CUSTOM, 99), rel=2e-3
    )
    assert as_table.returncode == 0, as_table.stderr
    assert "improvement factors (design sheet 03" in as_table.stdout
    assert "4.00x" in as_table.stdout


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("requests", "abc", "'requests' is 'abc', not a count"),
        ("requests", [1], "'requests' is [1], not a count"),
        ("rps", "fast", "'rps' is 'fast', not a rate"),
        ("latency_hdr", "garbage!!", "not an encoded HDR histogram"),
        ("latency_hdr", 5, "'latency_hdr' is int, not a string"),
        ("errors", 10**400, "unusable"),
    ],
)
def test_a_proxy_answering_nonsense_stats_is_one_clear_line(field, value, says):
    with FakeProxy() as fake:
        document = stats_document()
        document["backends"]["custom"][field] = value
        fake.stats_document = document
        command = [sys.executable, "-m", "llmstruct", "migrate", "report", "--proxy", fake.url]
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True,
                              timeout=HANG)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"llmstruct: error: the stats of the proxy at {fake.url} ")
    assert says in done.stderr and done.stderr.count("\n") == 1

"""``migrate report``: per-backend latency, throughput, memory and errors, and the sheet's factors.

Input: the proxy's cumulative stats (``GET /_proxy/stats``) and each backend's
``process_resident_memory_bytes``. Percentiles come from the HDR histogram the
proxy keeps per backend (``latency_hdr``, microseconds), decoded here, so p99 of
a million requests costs what p99 of ten does and histograms of separate periods
could be merged; never from a sorted list of samples.

Improvement factors, as design sheet 03's ``MigrationMetrics`` defines them
(above 1 means the custom server is better):

* response time = legacy p95 / custom p95
* memory        = legacy RSS / custom RSS
* throughput    = custom req/s / legacy req/s. Under a split this is the ratio of
  the *shares of the offered load* each backend was given (about W / (1 - W)), not
  of their capacities; ``perf/bench_migration.py`` measures capacity. The table and
  the JSON both say so.

A factor whose inputs are missing (a backend with no requests, an unreadable RSS)
is ``null`` in the JSON and ``n/a`` in the table.
"""

from __future__ import annotations

import math
from typing import Any

from llmstruct.migration.admin import ProxyAdmin, ProxyError

__all__ = ["THROUGHPUT_NOTE", "build_report", "collect", "format_table"]

SIDES = ("legacy", "custom")
PERCENTILES = (50, 95, 99)
THROUGHPUT_NOTE = (
    "throughput under a split is each backend's share of the offered load, not its "
    "capacity; perf/bench_migration.py compares capacity"
)


def collect(admin: ProxyAdmin) -> dict[str, Any]:
    """The report of the proxy behind ``admin``: its stats plus both backends' RSS."""
    stats = admin.stats()
    config = admin.config()
    rss = {side: reading.value for side, reading in admin.backends_rss(config).items()}
    try:
        return build_report(stats, rss, proxy=admin.url)
    except (TypeError, ValueError, OverflowError) as exc:  # a proxy answering nonsense
        raise ProxyError(f"the stats of the proxy at {admin.url} are unusable: {exc}") from None


def build_report(
    stats: dict[str, Any], rss: dict[str, int | None], proxy: str | None = None
) -> dict[str, Any]:
    """The report as a JSON-ready dict, from a stats document and the RSS of each side."""
    backends = {side: _backend(stats["backends"][side], rss.get(side)) for side in SIDES}
    legacy, custom = backends["legacy"], backends["custom"]
    started, ended = stats.get("started"), stats.get("ended")
    period = (
        ended - started
        if isinstance(started, int | float) and isinstance(ended, int | float)
        else None
    )
    return {
        "proxy": proxy,
        "mode": stats.get("mode"),
        "weight": stats.get("weight"),
        "period_s": period,
        "backends": backends,
        "improvement_factors": {
            "response_time": _ratio(legacy["latency_ms"]["p95"], custom["latency_ms"]["p95"]),
            "memory": _ratio(legacy["rss_bytes"], custom["rss_bytes"]),
            "throughput": _ratio(custom["rps"], legacy["rps"]) if legacy["requests"] else None,
        },
        "notes": {"throughput": THROUGHPUT_NOTE},
    }


def _backend(stats: dict[str, Any], rss: int | None) -> dict[str, Any]:
    # The kinds of these figures were checked as the stats arrived (ProxyAdmin.stats).
    requests = stats.get("requests") or 0
    errors = stats.get("errors") or 0
    return {
        "requests": requests,
        "errors": errors,
        "upstream_failures": stats.get("upstream_failures") or 0,
        "error_rate": errors / requests if requests else None,
        "rps": float(stats.get("rps") or 0.0),
        "latency_ms": _percentiles(stats.get("latency_hdr")),
        "rss_bytes": rss,
    }


def _percentiles(encoded: str | None) -> dict[str, float | None]:
    from llmstruct.migration.histogram import LatencyHistogram

    histogram = LatencyHistogram.decode(encoded)
    if not histogram.count:
        return {f"p{p}": None for p in PERCENTILES}
    # Recorded in microseconds; reported in milliseconds.
    return {f"p{p}": histogram.percentile_us(p) / 1000.0 for p in PERCENTILES}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


# -- the table ------------------------------------------------------------------------------------
def format_table(report: dict[str, Any]) -> str:
    """The report as aligned text for a terminal."""
    legacy, custom = report["backends"]["legacy"], report["backends"]["custom"]
    weight = report.get("weight")
    period = report.get("period_s")
    head = f"migration report: proxy {report.get('proxy') or '?'}, mode {report.get('mode') or '?'}"
    if isinstance(weight, int | float):
        head += f", weight {weight * 100:.4g}% to custom"
    if isinstance(period, int | float):
        head += f", over {period:.1f} s"
    rows = [
        ("requests", str(legacy["requests"]), str(custom["requests"])),
        ("errors (5xx 408 429 proxy)", str(legacy["errors"]), str(custom["errors"])),
        ("error rate", _pct(legacy["error_rate"]), _pct(custom["error_rate"])),
        ("req/s (share of load *)", f"{legacy['rps']:.1f}", f"{custom['rps']:.1f}"),
        *[
            (
                f"p{p} latency ms",
                _num(legacy["latency_ms"][f"p{p}"]),
                _num(custom["latency_ms"][f"p{p}"]),
            )  # fmt: skip
            for p in PERCENTILES
        ],
        ("RSS MiB", _mib(legacy["rss_bytes"]), _mib(custom["rss_bytes"])),
    ]
    lines = [head, "", f"{'':<26}{'legacy':>12}{'custom':>12}"]
    lines += [f"{name:<26}{left:>12}{right:>12}" for name, left, right in rows]
    factors = report["improvement_factors"]
    lines += [
        "",
        "improvement factors (design sheet 03; above 1: custom is better)",
        *[
            f"{name:<15}{formula:<28}{_factor(factors[key]):>10}"
            for name, formula, key in (
                ("response time", "legacy p95 / custom p95", "response_time"),
                ("memory", "legacy RSS / custom RSS", "memory"),
                ("throughput *", "custom req/s / legacy req/s", "throughput"),
            )
        ],
        "",
        f"* {THROUGHPUT_NOTE}",
    ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f}"


def _factor(value: float | None) -> str:
    """Two decimals, more below 0.1: a custom side 2000x slower is 0.00050x, not 0.00x."""
    if value is None:
        return "n/a"
    if value == 0:
        return "0.00x"
    if value < 1e-4:
        return f"{value:.1e}x"  # 1.2e-06x, not a run of zeros to count
    # At least two significant digits: as many decimals as the leading zeros need.
    decimals = max(2, 1 - math.floor(math.log10(value)))
    return f"{value:.{decimals}f}x"

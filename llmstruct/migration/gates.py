"""Health gates of the staged migrator: ``error_rate<=0.01``, ``p95_ratio<=1``, ``rss_ratio<=1``.

A gate is a metric, a comparison and a limit, parsed from the ``--gate`` text. At
the end of each window the migrator measures a ``Window`` (what the proxy's
``POST /_proxy/stats/window`` and the backends' RSS gauges say) and asks every
gate for a ``GateResult``: ``pass``, ``fail`` or ``inconclusive``.

The metrics, and why they are defined so:

* ``error_rate`` = custom errors / custom requests in the window. Errors are what
  the proxy counts (status >= 500 and upstream failures). Legacy's errors do not
  count: the gate judges the new server, and a rollback moves traffic *to* legacy,
  so legacy's own failures must not trigger one. They are kept in the history.
* ``p95_ratio`` = custom p95 / legacy p95 latency in the window. When the window has
  too few legacy samples (always so at 100 %), the legacy p95 of the latest window
  that had enough (``baseline_legacy_p95_ms``) stands in for it.
* ``rss_ratio`` = custom RSS / legacy RSS, each read from the backend's
  ``process_resident_memory_bytes`` at the end of the window.

Too few samples never pass silently: a gate whose window has fewer than
``min_samples`` custom requests (``p95_ratio``: and no legacy p95 with enough
samples, in the window or before) is ``inconclusive``, and so is an RSS gate
whose gauge could not be read. An inconclusive window neither advances nor rolls
back; the migrator decides what to do with it (``migrator.py``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "DECISIONS",
    "METRICS",
    "Gate",
    "GateError",
    "GateResult",
    "Window",
    "decide",
    "evaluate",
    "parse_gate",
]

METRICS = {
    "error_rate": "custom errors / custom requests in the window (legacy's errors do not count)",
    "p95_ratio": "custom p95 latency / legacy p95 latency in the window",
    "rss_ratio": "custom resident memory / legacy resident memory at the window's end",
}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_GATE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([^\s<>=].*?)\s*$")
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
DECISIONS = (PASS, FAIL, INCONCLUSIVE)


class GateError(ValueError):
    """A ``--gate`` expression that cannot be understood; the message says why."""


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    limit: float

    def __str__(self) -> str:
        # The plan stores gates as this text and parses it back: short where ``g``
        # is exact, the shortest round-tripping form (repr) where it is not.
        short = f"{self.limit:g}"
        limit = short if float(short) == self.limit else repr(self.limit)
        return f"{self.metric}{self.op}{limit}"

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.limit)


def parse_gate(text: str) -> Gate:
    """``"error_rate<=0.01"`` -> ``Gate("error_rate", "<=", 0.01)``, or ``GateError``."""
    found = _GATE.match(text)
    if found is None:
        raise GateError(
            f"bad gate {text!r}: expected METRIC OP NUMBER, e.g. error_rate<=0.01 "
            f"(OP one of <=, <, >=, >)"
        )
    metric, op, raw = found.groups()
    if metric not in METRICS:
        raise GateError(
            f"bad gate {text!r}: unknown metric {metric!r} (known: {', '.join(METRICS)})"
        )
    try:
        limit = float(raw)
    except ValueError:
        raise GateError(f"bad gate {text!r}: the limit {raw!r} is not a number") from None
    if not math.isfinite(limit) or limit < 0:
        raise GateError(f"bad gate {text!r}: the limit must be a finite number >= 0")
    return Gate(metric, op, limit)


@dataclass(frozen=True)
class Window:
    """What one window measured; ``None`` where nothing could be measured."""

    custom_requests: int
    custom_errors: int
    legacy_requests: int
    legacy_errors: int
    custom_p95_ms: float | None
    legacy_p95_ms: float | None
    custom_rss: int | None
    legacy_rss: int | None
    # The legacy p95 of the latest earlier window with enough legacy samples.
    baseline_legacy_p95_ms: float | None = None
    # Why a side's RSS is None (admin.RssReading.problem), for the gate's reason.
    custom_rss_problem: str = ""
    legacy_rss_problem: str = ""


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    outcome: str  # pass | fail | inconclusive
    value: float | None
    reason: str

    def as_json(self) -> dict:
        return {
            "gate": str(self.gate),
            "outcome": self.outcome,
            "value": self.value,
            "limit": self.gate.limit,
            "reason": self.reason,
        }


def evaluate(gate: Gate, window: Window, min_samples: int) -> GateResult:
    """Judge ``gate`` on ``window``; fewer than ``min_samples`` requests is inconclusive."""
    measure = _MEASURES[gate.metric]
    value, why_not = measure(window, min_samples)
    if value is None:
        return GateResult(gate, INCONCLUSIVE, None, f"{gate.metric}: {why_not}")
    held = gate.holds(value)
    verdict = "within" if held else "breaks"
    return GateResult(
        gate, PASS if held else FAIL, value,
        f"{gate.metric} = {value:.4g} {verdict} the limit {gate.op} {gate.limit:g}",
    )  # fmt: skip


def decide(results: Iterable[GateResult]) -> str:
    """One failed gate fails the window; else one inconclusive gate makes it inconclusive."""
    outcomes = {result.outcome for result in results}
    if FAIL in outcomes:
        return FAIL
    if INCONCLUSIVE in outcomes:
        return INCONCLUSIVE
    return PASS


# -- the metrics ----------------------------------------------------------------------------------
def _few(count: int, side: str, min_samples: int) -> str:
    return f"only {count} {side} requests in the window (fewer than --min-samples {min_samples})"


def _error_rate(window: Window, min_samples: int) -> tuple[float | None, str]:
    if window.custom_requests < min_samples or window.custom_requests == 0:
        return None, _few(window.custom_requests, "custom", min_samples)
    return window.custom_errors / window.custom_requests, ""


def _p95_ratio(window: Window, min_samples: int) -> tuple[float | None, str]:
    if window.custom_requests < min_samples or window.custom_requests == 0:
        return None, _few(window.custom_requests, "custom", min_samples)
    if window.custom_p95_ms is None:
        return None, "the proxy reported no custom latency"
    legacy = window.legacy_p95_ms if window.legacy_requests >= min_samples else None
    if legacy is None:
        legacy = window.baseline_legacy_p95_ms
    if legacy is None:
        return None, (
            _few(window.legacy_requests, "legacy", min_samples)
            + " and no earlier legacy p95 to compare with"
        )
    if legacy <= 0:
        return None, "the legacy p95 is 0 ms"
    return window.custom_p95_ms / legacy, ""


def _rss_ratio(window: Window, min_samples: int) -> tuple[float | None, str]:
    if window.custom_rss is None or window.legacy_rss is None:
        missing = "custom" if window.custom_rss is None else "legacy"
        problem = window.custom_rss_problem if missing == "custom" else window.legacy_rss_problem
        because = f" ({problem})" if problem else ""
        return None, f"could not read the {missing} server's process_resident_memory_bytes{because}"
    if window.legacy_rss <= 0:
        return None, "the legacy server reported 0 bytes resident"
    return window.custom_rss / window.legacy_rss, ""


_MEASURES = {"error_rate": _error_rate, "p95_ratio": _p95_ratio, "rss_ratio": _rss_ratio}

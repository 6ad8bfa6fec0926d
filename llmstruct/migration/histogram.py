"""Latency histograms for the migration toolkit: a thin wrapper over HdrHistogram.

The proxy records one value per request (microseconds) and the migrator and the
report read percentiles back, possibly after merging windows or shipping a
histogram over HTTP. HdrHistogram (``hdrh``, the Python port of Gil Tene's) does
all of it with a fixed relative error: 3 significant digits means every value is
kept within 0.1 %, p99 included, in a few KiB whatever the number of samples.
Averaging per-window percentiles would be wrong; merging histograms is exact.

Range: 1 µs to 1 hour. A longer value is clamped to the top (a request that
takes an hour is an outage, and its exact duration changes no gate).
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = ["LatencyHistogram", "LOWEST_US", "HIGHEST_US", "SIGNIFICANT_DIGITS"]

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 95.0, 99.0)


class LatencyHistogram:
    """Request latencies in microseconds: ``record``, ``summary`` (ms), ``encode``/``decode``,
    ``merge``."""

    __slots__ = ("_hdr",)

    def __init__(self, hdr: HdrHistogram | None = None) -> None:
        self._hdr = hdr or HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)

    # -- writing ---------------------------------------------------------------------------
    def record(self, us: float) -> None:
        """Add one latency of ``us`` microseconds (clamped to the histogram's range)."""
        value = int(us)
        self._hdr.record_value(LOWEST_US if value < LOWEST_US else min(value, HIGHEST_US))

    def record_seconds(self, seconds: float) -> None:
        self.record(seconds * 1e6)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add every value of ``other`` into this histogram; returns self."""
        self._hdr.add(other._hdr)
        return self

    # -- reading ---------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(self._hdr.get_total_count())

    def percentile_us(self, percentile: float) -> int:
        """The value at ``percentile`` (0..100), in microseconds; 0 when empty."""
        return int(self._hdr.get_value_at_percentile(percentile)) if self.count else 0

    def summary(self) -> dict[str, float] | None:
        """``{"p50", "p95", "p99", "max", "mean"}`` in milliseconds, or None when empty."""
        if not self.count:
            return None
        result = {f"p{p:g}": self.percentile_us(p) / 1000.0 for p in PERCENTILES}
        result["max"] = int(self._hdr.get_max_value()) / 1000.0
        result["mean"] = round(float(self._hdr.get_mean_value()) / 1000.0, 3)
        return result

    # -- shipping --------------------------------------------------------------------------
    def encode(self) -> str | None:
        """HdrHistogram's compressed base64 form (``HISTF...``), or None when empty."""
        if not self.count:
            return None
        return self._hdr.encode().decode("ascii")

    @classmethod
    def decode(cls, encoded: str | bytes | None) -> LatencyHistogram:
        """The histogram of ``encode()`` (an empty one for None); ValueError for anything else."""
        if not encoded:
            return cls()
        try:
            raw = encoded.encode("ascii") if isinstance(encoded, str) else bytes(encoded)
            decoded = HdrHistogram.decode(raw)
            hist = cls()
            hist._hdr.add(decoded)  # normalise to this module's range and precision
        except Exception as exc:  # hdrhistogram raises its own kinds, zlib's, struct's...
            raise ValueError(
                f"not an encoded HDR histogram of latencies ({type(exc).__name__})"
            ) from None
        return hist

    @classmethod
    def merged(cls, histograms: Any) -> LatencyHistogram:
        """One histogram holding every value of ``histograms`` (or of encoded strings)."""
        total = cls()
        for item in histograms:
            total.merge(item if isinstance(item, LatencyHistogram) else cls.decode(item))
        return total

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, summary={self.summary()})"

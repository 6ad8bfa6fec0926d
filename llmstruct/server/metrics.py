"""Prometheus metrics for one worker: compiled twin if built, else the Python one.

``llmstruct._ext._metrics_py`` is the source of both twins (the compiled one is
that file built with ``_metrics_c.pxd``), with the series it keeps in its
docstring; type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._metrics_py import BUCKETS, CONTENT_TYPE, Metrics, _rss_bytes
else:
    _impl = load_twin("metrics")
    BUCKETS, CONTENT_TYPE, Metrics, _rss_bytes = (
        _impl.BUCKETS, _impl.CONTENT_TYPE, _impl.Metrics, _impl._rss_bytes
    )  # fmt: skip

__all__ = ["BUCKETS", "CONTENT_TYPE", "Metrics"]

"""Benchmark LRUCache on a context-cache workload: ``--impl c`` or ``--impl py``.

Both twins in one suite (benchmarks ``lru_mix[c]``, ``lru_mix[py]``, ...)::

    python perf/bench_lru.py -o /tmp/lru.json

One twin per file (bare names, ``lru_impl`` metadata), to compare::

    python perf/bench_lru.py --impl c -o /tmp/lru_c.json
    python perf/bench_lru.py --impl py -o /tmp/lru_py.json
    python -m pyperf compare_to /tmp/lru_py.json /tmp/lru_c.json

Workload (fixed seed, built before timing): 100k requests for 20k context keys
(``ctx:<hash>:<budget>``, as the server keys assembled contexts) with Zipf-like
popularity; each is a ``get``, and a miss is followed by a ``set`` of that key's
serialised size (200..20000 bytes), cache-aside. The 24 MiB cap holds ~2400 of
them, so sets evict, and the mix comes out at 90% get / 10% set. ``lru_mix`` stores
without TTL; ``lru_mix_ttl`` with a default TTL, so every hit also reads the clock.
Times are per operation.
"""

from __future__ import annotations

import hashlib
import importlib
import random
import sys
from pathlib import Path

import pyperf
from twins import twin_runner, twins

# Bench this checkout and its in-place build, whatever llmstruct is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 20240611
N_KEYS = 20_000
N_REQUESTS = 100_000
ZIPF_S = 1.2
CAP = 24 * 1024 * 1024
TTL = 300.0  # long enough that nothing expires during a run
VALUE = b"{}"  # sizes are declared, so one shared value object is enough


def build_ops(cache_cls: type) -> list[tuple[str, int | None]]:
    """Requests as ``(key, None)`` for a get and ``(key, size)`` for a set after a miss."""
    rng = random.Random(SEED)
    keys = [
        f"ctx:{hashlib.sha1(str(i).encode()).hexdigest()[:16]}:{rng.choice((2000, 4000, 8000))}"
        for i in range(N_KEYS)
    ]
    size_of = {key: rng.randint(200, 20_000) for key in keys}
    weights = [1 / rank**ZIPF_S for rank in range(1, N_KEYS + 1)]
    requests = rng.choices(keys, weights=weights, k=N_REQUESTS)
    # Simulate cache-aside once to know which gets miss and so are followed by a set.
    cache = cache_cls(CAP)
    ops: list[tuple[str, int | None]] = []
    for key in requests:
        ops.append((key, None))
        if cache.get(key) is None:
            cache.set(key, VALUE, size_of[key])
            ops.append((key, size_of[key]))
    return ops


def time_mix(loops: int, cache_cls: type, ops: list, ttl: float | None) -> float:
    """Replay ``ops`` on a fresh cache ``loops`` times; return the elapsed seconds."""
    elapsed = 0.0
    for _ in range(loops):
        cache = cache_cls(CAP, default_ttl=ttl)
        get, set_ = cache.get, cache.set
        t0 = pyperf.perf_counter()
        for key, size in ops:
            if size is None:
                get(key)
            else:
                set_(key, VALUE, size)
        elapsed += pyperf.perf_counter() - t0
    return elapsed


def main() -> None:
    runner, args = twin_runner("lru")
    ops = build_ops(importlib.import_module("llmstruct._ext._lru_py").LRUCache)
    runner.metadata["lru_ops"] = f"{len(ops)} ({len(ops) - N_REQUESTS} sets)"
    for module, suffix in twins("lru", args):
        for name, ttl in (("lru_mix", None), ("lru_mix_ttl", TTL)):
            runner.bench_time_func(
                name + suffix, time_mix, module.LRUCache, ops, ttl, inner_loops=len(ops)
            )

if __name__ == "__main__":
    main()

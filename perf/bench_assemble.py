"""Benchmark ``assemble`` on a ranked repository map: ``--impl c`` or ``--impl py``.

Both twins in one suite (benchmarks ``assemble_2k[c]``, ``assemble_2k[py]``, ...)::

    python perf/bench_assemble.py -o /tmp/assemble.json

One twin per file (bare names, ``assemble_impl`` metadata), to compare::

    python perf/bench_assemble.py --impl c -o /tmp/assemble_c.json
    python perf/bench_assemble.py --impl py -o /tmp/assemble_py.json
    python -m pyperf compare_to /tmp/assemble_py.json /tmp/assemble_c.json

Input (fixed seed, built before timing), shaped like the symbols of a mid-sized
repository: 2,000 ranked symbols in 200 files, at four levels, each level
containing the next so costs never fall as detail grows:

* name only: 1..8 tokens;
* signature: 5..60 tokens; missing for the ~10% of symbols that are constants
  or variables;
* signature and docstring: 10..200 tokens; missing for the ~40% of symbols
  without a docstring (and for those without a signature);
* full source: 50..3000 tokens, log-normal around 250 (most functions are
  short, a few classes are long).

Files have a path header of 5..20 tokens and Zipf-like sizes (a few big modules,
many small ones); symbols are ranked in random order, so their files interleave.
``assemble_2k``, ``assemble_8k`` and ``assemble_32k`` call it with those token
budgets, half of each for the coverage pass. The inputs are ``array('q')``, as
the context engine passes them. Times are per call.
"""

from __future__ import annotations

import math
import random
import sys
from array import array
from pathlib import Path

import pyperf
from twins import twin_runner, twins

# Bench this checkout and its in-place build, whatever llmstruct is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 20240613
N_SYMBOLS = 2_000
N_FILES = 200
LEVELS = 4  # full source, signature + docstring, signature, name
BUDGETS = {"assemble_2k": 2_000, "assemble_8k": 8_000, "assemble_32k": 32_000}
COVERAGE_SHARE = 0.5
FILE_ZIPF_S = 1.0
NO_SIGNATURE = 0.10
NO_DOCSTRING = 0.40


def symbol_costs(rng: random.Random) -> list[int]:
    """One symbol's token costs, finest level first; -1 where a level is missing."""
    name = rng.randint(1, 8)
    signature = rng.randint(max(5, name), 60)
    doc = rng.randint(max(10, signature), 200)
    full = min(3000, max(50, doc, round(rng.lognormvariate(math.log(250), 0.9))))
    if rng.random() < NO_SIGNATURE:
        return [full, -1, -1, name]
    if rng.random() < NO_DOCSTRING:
        return [full, -1, signature, name]
    return [full, doc, signature, name]


def build_problem() -> tuple[array, array, array]:
    """``(costs, groups, group_costs)`` for the ranked symbols, as ``array('q')``."""
    rng = random.Random(SEED)
    group_costs = array("q", (rng.randint(5, 20) for _ in range(N_FILES)))
    weights = [1 / rank**FILE_ZIPF_S for rank in range(1, N_FILES + 1)]
    groups = array("q", rng.choices(range(N_FILES), weights=weights, k=N_SYMBOLS))
    costs = array("q")
    for _ in range(N_SYMBOLS):
        costs.extend(symbol_costs(rng))
    return costs, groups, group_costs


def time_assemble(loops: int, assemble, args: tuple) -> float:
    """Call ``assemble(*args)`` ``loops`` times; return the elapsed seconds."""
    t0 = pyperf.perf_counter()
    for _ in range(loops):
        assemble(*args)
    return pyperf.perf_counter() - t0


def main() -> None:
    runner, args = twin_runner("assemble")
    costs, groups, group_costs = build_problem()
    runner.metadata["assemble_input"] = (
        f"{N_SYMBOLS} symbols x {LEVELS} levels in {N_FILES} files, seed {SEED}"
    )
    for module, suffix in twins("assemble", args):
        for name, budget in BUDGETS.items():
            call = (costs, LEVELS, groups, group_costs, budget, int(budget * COVERAGE_SHARE))
            runner.bench_time_func(name + suffix, time_assemble, module.assemble, call)

if __name__ == "__main__":
    main()

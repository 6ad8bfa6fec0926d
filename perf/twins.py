"""Shared plumbing of the benchmarks of ``_ext`` twins (``--impl c|py``, as multidict's).

With ``--impl c`` or ``--impl py`` one twin is measured under bare benchmark
names, so that ``pyperf compare_to py.json c.json`` pairs the two files up;
without it both twins run in one suite, told apart by a ``[c]``/``[py]`` suffix.
"""

from __future__ import annotations

import importlib
from argparse import Namespace
from collections.abc import Iterator
from types import ModuleType

import pyperf


def _pass_impl(cmd: list[str], args: Namespace) -> None:
    # pyperf re-runs the script in worker processes; they need --impl too.
    if args.impl:
        cmd.extend(("--impl", args.impl))


def twin_runner(name: str) -> tuple[pyperf.Runner, Namespace]:
    """A Runner with ``--impl``; records the chosen twin in ``<name>_impl`` metadata."""
    runner = pyperf.Runner(add_cmdline_args=_pass_impl)
    runner.argparser.add_argument(
        "--impl", choices=("c", "py"), help="bench one twin (default: both, in one suite)"
    )
    args = runner.parse_args()
    if args.impl:
        runner.metadata[f"{name}_impl"] = args.impl
    return runner, args


def twins(name: str, args: Namespace) -> Iterator[tuple[ModuleType, str]]:
    """(twin module, benchmark-name suffix) for each twin to measure."""
    for impl in (args.impl,) if args.impl else ("c", "py"):
        module = importlib.import_module(f"llmstruct._ext._{name}_{impl}")
        yield module, "" if args.impl else f"[{impl}]"

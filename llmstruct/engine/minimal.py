"""MINIMAL mode: the project summary and a table of contents, modules by importance.

A module's importance is its node's global centrality in the code graph; tests,
examples and vendored code come last. Each module is one line, at one of two
levels: with its summary and counts, or its path alone.
"""

from __future__ import annotations

from array import array

import numpy as np

from llmstruct._ext.assemble import assemble
from llmstruct.engine.index import StructIndex

_TOC_HEADER = "## Modules\n"


def module_lines(index: StructIndex) -> list[tuple[str, str]]:
    lines = []
    for module in index.modules:
        counts = f"{module.functions} functions, {module.classes} classes"
        summary = f": {module.summary}" if module.summary else ""
        lines.append((f"- {module.path}{summary} ({counts})\n", f"- {module.path}\n"))
    return lines


def _costs(index: StructIndex) -> tuple[list[tuple[str, str]], array]:
    cached = getattr(index, "_minimal_cache", None)
    if cached is None:
        lines = module_lines(index)
        costs = array("q")
        for detailed, short in lines:
            costs.extend((index.counter.count(detailed), index.counter.count(short)))
        cached = index._minimal_cache = (lines, costs)  # type: ignore[attr-defined]
    return cached


def _ranking(index: StructIndex) -> list[int]:
    offset = len(index.symbols)
    score = index.centrality[offset:].copy()
    for i, module in enumerate(index.modules):
        if module.demoted:
            score[i] *= 0.1
    return np.argsort(-score, kind="stable").tolist()


def build_minimal(index: StructIndex, budget: int, format: str):
    from llmstruct.engine.context import ContextResult

    summary = index.summary or f"{len(index.modules)} modules"
    head = f"# {index.project}: MINIMAL context\n{summary}\n\n"
    lines, all_costs = _costs(index)
    order = _ranking(index)
    costs = array("q")
    for i in order:
        costs.extend(all_costs[2 * i : 2 * i + 2])
    groups = array("q", [0] * len(order))
    header_cost = index.counter.count(_TOC_HEADER)
    head_cost = index.counter.count(head)
    room = budget - head_cost
    chosen: list[int] = []
    if room > 0 and order:
        chosen = list(assemble(costs, 2, groups, array("q", [header_cost]), room, room // 2)[0])
    picked = [(order[k], level) for k, level in enumerate(chosen) if level >= 0]
    if format == "md":
        body = "".join(lines[i][level] for i, level in picked)
        data = head + (_TOC_HEADER + body if picked else "")
        tokens = head_cost + (header_cost if picked else 0)
        tokens += sum(costs[2 * k + level] for k, level in enumerate(chosen) if level >= 0)
    else:
        data, tokens = _structured(index, head, picked, lines, format, budget)
    if tokens > budget:
        data, tokens, picked = "", 0, []
    return ContextResult(
        data=data,
        token_count=tokens,
        mode="MINIMAL",
        optimization_applied=False,
        file_count=len(picked),
        budget=budget,
        truncated=len(picked) < len(order),
        format=format,
        symbols=[],
    )


def _structured(index, head, picked, lines, format, budget):
    from xml.sax.saxutils import escape, quoteattr

    import orjson

    while True:
        modules = [index.modules[i] for i, _ in picked]
        if format == "json":
            text = orjson.dumps(
                {
                    "project": index.project,
                    "mode": "MINIMAL",
                    "summary": index.summary,
                    "modules": [
                        {"path": m.path, "summary": m.summary if level == 0 else ""}
                        for m, (_, level) in zip(modules, picked, strict=True)
                    ],
                }
            ).decode()
        else:
            rows = "".join(
                f"<module path={quoteattr(m.path)}>"
                f"{escape(m.summary) if level == 0 else ''}</module>\n"
                for m, (_, level) in zip(modules, picked, strict=True)
            )
            text = (
                f'<context project={quoteattr(index.project)} mode="MINIMAL">\n'
                f"<summary>{escape(index.summary)}</summary>\n{rows}</context>\n"
            )
        tokens = index.counter.count(text)
        if tokens <= budget or not picked:
            return text, tokens
        # Escaped structure costs more than the Markdown plan: drop the least important.
        picked = picked[: max(0, len(picked) - max(1, (tokens - budget) // 8))]

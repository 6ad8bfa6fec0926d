"""Rendering chosen symbols as Markdown, JSON or XML, grouped by file.

Markdown is the default and the exact path: every block (preamble, file header,
symbol block, file footer) starts with a non-space character and ends with a
newline, so the token count of the page is the sum of the blocks' counts (see
``forms``), all known before rendering. JSON and XML escape text, which changes
its tokens, so the context manager counts those pages after rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import orjson

from llmstruct.engine.forms import LEVELS
from llmstruct.engine.index import FOOTER, StructIndex

FORMATS = ("md", "json", "xml")


@dataclass(slots=True)
class Shown:
    symbol: int
    level: int
    text: str  # the block (marker line + form)


def group_by_file(index: StructIndex, shown: list[Shown]) -> list[tuple[int, list[Shown]]]:
    """Files in the order of their best-ranked symbol; symbols by line within a file."""
    order: dict[int, list[Shown]] = {}
    for item in shown:
        order.setdefault(index.symbols[item.symbol].module, []).append(item)
    return [
        (module, sorted(items, key=lambda s: index.symbols[s.symbol].line_range))
        for module, items in order.items()
    ]


def preamble(project: str, mode: str, query: str | None, tasks=()) -> str:
    """The page's first block (title, query, tasks in progress); ends with a blank line."""
    head = f"# {project}: {mode} context\n"
    if query and query.strip():
        head += f"Query: {' '.join(query.split())}\n"
    if tasks:
        head += "Tasks in progress:\n" + "".join(f"- {' '.join(t.split())}\n" for t, _ in tasks)
    return head + "\n"


def render_markdown(index: StructIndex, head: str, files) -> str:
    parts = [head]
    for module, items in files:
        parts.append(index.modules[module].header)
        parts.extend(item.text for item in items)
        parts.append(FOOTER)
    return "".join(parts)


def render_json(index: StructIndex, mode: str, query: str | None, files, extra=None) -> str:
    document = {
        "project": index.project,
        "mode": mode,
        "query": query or "",
        **(extra or {}),
        "files": [
            {
                "path": index.modules[module].path,
                "language": index.modules[module].language,
                "symbols": [_symbol_json(index, item) for item in items],
            }
            for module, items in files
        ],
    }
    return orjson.dumps(document).decode()


def _symbol_json(index: StructIndex, item: Shown) -> dict:
    symbol = index.symbols[item.symbol]
    return {
        "uid": symbol.uid,
        "kind": symbol.kind,
        "lines": list(symbol.line_range),
        "level": LEVELS[item.level],
        "text": item.text[len(symbol.marker) :],
    }


def render_xml(index: StructIndex, mode: str, query: str | None, files, extra=None) -> str:
    attrs = f"project={quoteattr(index.project)} mode={quoteattr(mode)}"
    if query:
        attrs += f" query={quoteattr(query)}"
    parts = [f"<context {attrs}>\n"]
    if extra:
        for key, value in extra.items():
            parts.append(f"<{key}>{escape(str(value))}</{key}>\n")
    for module, items in files:
        info = index.modules[module]
        parts.append(f"<file path={quoteattr(info.path)} language={quoteattr(info.language)}>\n")
        for item in items:
            symbol = index.symbols[item.symbol]
            first, last = symbol.line_range
            parts.append(
                f"<symbol uid={quoteattr(symbol.uid)} kind={quoteattr(symbol.kind)} "
                f'lines="{first}-{last}" level="{LEVELS[item.level]}">'
                f"{escape(item.text[len(symbol.marker) :])}</symbol>\n"
            )
        parts.append("</file>\n")
    parts.append("</context>\n")
    return "".join(parts)

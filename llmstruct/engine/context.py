"""The context manager: ranked, token-budgeted context from a struct, in four modes.

``ContextManager.build_context(mode, query_hint, budget, ...)`` -> ``ContextResult``.

* ``MINIMAL``  project summary and a table of contents (modules by centrality);
* ``FOCUSED``  what the hint and ``include_files`` point at, with what it calls and
  what calls it (personalised PageRank seeded by the BM25 hits), finest detail first;
* ``FULL``     the whole structure by centrality, the public API first, at the
  detail the budget allows;
* ``SESSION``  files changed in the git working tree (or since a ref) and their
  neighbours in the code graph.

The budget is in real tokens of the rendered text and is never exceeded: the
assembly loop (``llmstruct._ext.assemble``) plans with the exact per-block counts
made at scan time; Markdown pages add up exactly (see ``forms``), JSON and XML
pages are counted after rendering and re-planned in the rare case they run over.
Results are cached in the LRU cache by (struct hash, mode, hint, budget, format,
files, ref).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from llmstruct._ext.assemble import assemble
from llmstruct._ext.lru import LRUCache
from llmstruct.engine import gitstate
from llmstruct.engine.forms import LEVELS
from llmstruct.engine.index import StructIndex
from llmstruct.engine.render import (
    FORMATS,
    Shown,
    group_by_file,
    preamble,
    render_json,
    render_markdown,
    render_xml,
)
from llmstruct.engine.tokens import DEFAULT_ENCODING, TokenCounter
from llmstruct.store.structfile import StructFileError, shape_problem
from llmstruct.store.tasks import TaskStore


class ContextMode(StrEnum):
    MINIMAL = "MINIMAL"
    FOCUSED = "FOCUSED"
    FULL = "FULL"
    SESSION = "SESSION"

    @classmethod
    def parse(cls, value: str | ContextMode) -> ContextMode:
        try:
            return cls(str(value.value if isinstance(value, ContextMode) else value).upper())
        except ValueError:
            raise ContextError(
                f"invalid context mode {value!r}; choose one of {', '.join(m.value for m in cls)}"
            ) from None


#: Defaults sized for a model's working context: a map, a focused answer, a broad
#: overview, a review of work in progress.
DEFAULT_BUDGETS = {
    ContextMode.MINIMAL: 1_000,
    ContextMode.FOCUSED: 4_000,
    ContextMode.FULL: 16_000,
    ContextMode.SESSION: 8_000,
}
MAX_BUDGET = 2_000_000
#: Share of the budget the breadth-first pass may spend (see ``_ext.assemble``).
COVERAGE_SHARE = {ContextMode.FOCUSED: 0.25, ContextMode.FULL: 0.6, ContextMode.SESSION: 0.4}
#: The coarsest level a symbol is shown at in the symbol modes: its signature.
COARSEST_LEVEL = LEVELS.index("signature")
#: How far down the ranking a FOCUSED or SESSION answer looks.
CANDIDATES = 1500
_SEEDS = 40
#: Tests, examples and vendored code match questions about the code they use, word
#: for word; they are worth showing only after that code.
TEST_WEIGHT = 0.3
_ENTRY_OVERHEAD = 200  # bytes an LRU entry costs beyond its text


class ContextError(ValueError):
    """Bad request (mode, budget, format, file): a message for the user."""


@dataclass(slots=True)
class ContextResult:
    data: str
    token_count: int
    mode: str
    optimization_applied: bool
    file_count: int
    budget: int
    truncated: bool
    format: str = "md"
    symbols: list[tuple[str, str]] = field(default_factory=list)  # (uid, level)
    # What callers derive from this result and may reuse while it is cached (the
    # servers' encoded JSON answer): a cache hit then costs no encoding at all.
    answers: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class ContextManager:
    """Builds context from one struct.json; reloads it when the file changes.

    Thread-safe: one lock serialises loading the index and building, so a server may
    call it from executor threads for HTTP, WebSocket and AI-bridge requests alike
    (the index and the LRU cache are shared state; a cached answer is still quick).

    ``recheck_s``: how long one look at struct.json (a stat(2)) stands for the at-once
    answers (``index_now``, ``cached_context``). 0 (the default): every call looks.
    A server answering thousands of cached requests a second passes a second or so
    (the stat was a tenth of a cached context's time on the event loop), so a change
    made behind its back shows within that; ``recheck()`` makes the next call look,
    as after a scan of its own. ``index()`` and ``build_context()`` always look.
    """

    def __init__(
        self,
        struct_path: Path | str,
        root: Path | str | None = None,
        encoding: str = DEFAULT_ENCODING,
        cache_bytes: int = 64 * 1024 * 1024,
        tasks: TaskStore | None = None,
        recheck_s: float = 0.0,
    ) -> None:
        self.struct_path = Path(struct_path)
        self.tasks = tasks  # SESSION context includes the tasks in progress
        self.root = Path(root) if root is not None else self.struct_path.parent
        self.encoding = encoding
        self._counter: TokenCounter | None = None
        self.cache = LRUCache(cache_bytes)
        self._loaded: tuple[tuple[int, int], str, StructIndex] | None = None
        self._lock = threading.RLock()
        self.recheck_s = recheck_s
        self._looked_until = 0.0  # the at-once answers trust the loaded stamp until then

    @property
    def counter(self) -> TokenCounter:
        # Loaded on first use: a process that only lists tasks never pays for it.
        if self._counter is None:
            self._counter = TokenCounter(self.encoding)
        return self._counter

    # -- the struct ------------------------------------------------------------------
    def index(self) -> tuple[str, StructIndex]:
        """(struct hash, index), reloading when struct.json changed on disk."""
        with self._lock:
            return self._index()

    def index_now(self) -> tuple[str, StructIndex] | None:
        """``index()`` if it can be had at once: nobody holds the manager and struct.json
        is unchanged since it was loaded. None otherwise (call ``index()`` where waiting
        or parsing is fine): an event loop answers from here without a thread hop."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._current()
        finally:
            self._lock.release()

    def recheck(self) -> None:
        """Make the next at-once answer look at struct.json again (``recheck_s``)."""
        with self._lock:  # not between another thread's look and its note of it
            self._looked_until = 0.0

    def _current(self) -> tuple[str, StructIndex] | None:
        loaded = self._loaded
        if loaded is None:
            return None
        now = time.monotonic()
        if now >= self._looked_until:
            try:
                stamp = self._stamp()
            except StructFileError:
                return None  # index() reports it
            if loaded[0] != stamp:
                return None
            self._looked_until = now + self.recheck_s
        return loaded[1], loaded[2]

    def _stamp(self) -> tuple[int, int]:
        try:
            info = os.stat(self.struct_path)
        except OSError as exc:
            raise StructFileError(f"{self.struct_path}: {exc.strerror}") from None
        return info.st_mtime_ns, info.st_size

    def _index(self) -> tuple[str, StructIndex]:
        stamp = self._stamp()
        if self._loaded is None or self._loaded[0] != stamp:
            data = self.struct_path.read_bytes()
            try:
                struct = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise StructFileError(f"{self.struct_path}: not valid JSON ({exc})") from None
            problem = shape_problem(struct)
            if problem:
                raise StructFileError(
                    f"{self.struct_path}: not a struct.json v2.x file ({problem})"
                )
            index = StructIndex(struct, self.root, self.counter)
            self._loaded = (stamp, hashlib.sha256(data).hexdigest(), index)
            self._looked_until = 0.0
        return self._loaded[1], self._loaded[2]

    # -- the public call -------------------------------------------------------------
    def build_context(
        self,
        mode: str | ContextMode = ContextMode.FOCUSED,
        query_hint: str | None = None,
        budget: int | None = None,
        include_files: list[str] | tuple[str, ...] = (),
        format: str = "md",
        since: str | None = None,
    ) -> ContextResult:
        with self._lock:
            return self._build(mode, query_hint, budget, include_files, format, since)

    def cached_context(
        self,
        mode: str | ContextMode = ContextMode.FOCUSED,
        query_hint: str | None = None,
        budget: int | None = None,
        include_files: list[str] | tuple[str, ...] = (),
        format: str = "md",
    ) -> ContextResult | None:
        """``build_context()``'s answer if it is cached and can be had at once (as
        ``index_now``); None otherwise. SESSION is never answered here: its key needs
        the working tree's state. Invalid arguments raise as in ``build_context()``."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            loaded = self._current()
            if loaded is None or ContextMode.parse(mode) is ContextMode.SESSION:
                return None
            key, _, _, _, _ = self._key(loaded, mode, query_hint, budget, include_files, format)
            return self.cache.get((*key, _Session().key()))
        finally:
            self._lock.release()

    def _build(
        self,
        mode: str | ContextMode,
        query_hint: str | None,
        budget: int | None,
        include_files: list[str] | tuple[str, ...],
        format: str,
        since: str | None,
    ) -> ContextResult:
        request, index, mode, budget, files = self._key(
            None, mode, query_hint, budget, include_files, format
        )
        session = _Session()
        if mode is ContextMode.SESSION:
            # What SESSION shows changes with the working tree and the task list, not
            # only with the struct: both are part of the cache key.
            session.changed = tuple(gitstate.changed_files(index.root, since))
            if self.tasks is not None:
                session.tasks = tuple(
                    (t.title, t.description or "") for t in self.tasks.in_progress()
                )
        key = (*request, session.key())
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        result = _Builder(index, mode, query_hint, budget, files, format, session).build()
        # Twice the text: room for one encoded answer kept in ``result.answers``.
        self.cache.set(key, result, 2 * len(result.data) + _ENTRY_OVERHEAD)
        return result

    def _key(
        self,
        loaded: tuple[str, StructIndex] | None,
        mode: str | ContextMode,
        query_hint: str | None,
        budget: int | None,
        include_files: list[str] | tuple[str, ...],
        format: str,
    ) -> tuple[tuple, StructIndex, ContextMode, int, tuple[str, ...]]:
        """A request's cache key without the session part (checking its arguments),
        with what building needs."""
        mode = ContextMode.parse(mode)
        budget = DEFAULT_BUDGETS[mode] if budget is None else _check_budget(budget)
        if format not in FORMATS:
            raise ContextError(f"invalid format {format!r}; choose one of {', '.join(FORMATS)}")
        struct_hash, index = loaded if loaded is not None else self._index()
        files = tuple(sorted({_normalise(path) for path in include_files}))
        unknown = [path for path in files if path not in index.by_path]
        if unknown:
            raise ContextError(f"not in the struct: {', '.join(unknown)}")
        key = (struct_hash, mode.value, query_hint or "", budget, format, files)
        return key, index, mode, budget, files


def _check_budget(budget: int) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise ContextError(f"budget must be a whole number of tokens, not {budget!r}")
    if budget < 0 or budget > MAX_BUDGET:
        raise ContextError(f"budget must be between 0 and {MAX_BUDGET} tokens, not {budget}")
    return budget


def _normalise(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/").lstrip("./") if path else path


@dataclass(slots=True)
class _Session:
    """What SESSION context starts from: changed files and tasks in progress."""

    changed: tuple[str, ...] = ()
    tasks: tuple[tuple[str, str], ...] = ()  # (title, description)

    def key(self) -> tuple:
        return (self.changed, self.tasks)

    def text(self) -> str:
        return " ".join(f"{title} {description}" for title, description in self.tasks)


class _Builder:
    """One context request: rank, plan, render."""

    def __init__(
        self,
        index: StructIndex,
        mode: ContextMode,
        query: str | None,
        budget: int,
        files: tuple[str, ...],
        format: str,
        session: _Session,
    ) -> None:
        self.index = index
        self.mode = mode
        self.query = query.strip() if query and query.strip() else None
        self.budget = budget
        self.files = files
        self.format = format
        self.session = session
        self.optimized = False

    def build(self) -> ContextResult:
        if self.mode is ContextMode.MINIMAL:
            return self._minimal()
        ranked = self._rank()
        head = preamble(self.index.project, self.mode.value, self.query, self.session.tasks)
        head_cost = self.index.counter.count(head)
        budget = self.budget - head_cost
        for _ in range(4):  # JSON/XML escaping may cost more than planned: plan smaller
            shown, truncated = self._plan(ranked, budget)
            data, tokens = self._render(head, head_cost, shown)
            if tokens <= self.budget:
                break
            budget -= tokens - self.budget + 8
        else:
            shown, truncated = [], bool(ranked)
            data, tokens = self._render(head, head_cost, shown)
        if tokens > self.budget:  # even the empty page does not fit a tiny budget
            data, tokens, shown, truncated = "", 0, [], bool(ranked)
        return ContextResult(
            data=data,
            token_count=tokens,
            mode=self.mode.value,
            optimization_applied=self.optimized,
            file_count=len({self.index.symbols[s.symbol].module for s in shown}),
            budget=self.budget,
            truncated=truncated,
            format=self.format,
            symbols=[(self.index.symbols[s.symbol].uid, LEVELS[s.level]) for s in shown],
        )

    # -- ranking ----------------------------------------------------------------------
    def _rank(self) -> list[int]:
        index = self.index
        n = len(index.symbols)
        if n == 0:
            return []
        seeds = np.zeros(n + len(index.modules))
        lexical = np.zeros(n)
        if self.mode is ContextMode.FOCUSED:
            if self.query:
                lexical = index.lexical.scores(self.query)
                top, weight = _top_hits(lexical)
                seeds[top] = weight
            for path in self.files:
                seeds[n + index.by_path[path]] = 1.0
        elif self.mode is ContextMode.SESSION:
            for path in self.session.changed:
                module = index.by_path.get(path)
                if module is not None:
                    seeds[n + module] = 1.0
                    seeds[index.modules[module].symbols] = 1.0
            if self.session.tasks:  # what the tasks in progress talk about
                lexical = index.lexical.scores(self.session.text())
                top, weight = _top_hits(lexical)
                seeds[top] = np.maximum(seeds[top], 0.5 * weight)
        if self.mode is ContextMode.FULL or not seeds.any():
            score = _normalised(index.centrality[:n]) + index.public
            if self.mode is not ContextMode.FULL:
                return []  # nothing points anywhere: FOCUSED/SESSION have nothing to show
            return _order(score, n, positive_only=False)
        self.optimized = True
        reach = index.graph.personalised(seeds)[:n]
        score = (
            _normalised(lexical)
            + 0.6 * _normalised(reach)
            + 0.05 * _normalised(index.centrality[:n])
            + 0.1 * np.maximum(index.public, 0)
        ) * np.where(index.demoted, TEST_WEIGHT, 1.0)
        score[(reach <= 0) & (lexical <= 0)] = 0
        return _order(score, CANDIDATES)

    # -- planning -----------------------------------------------------------------------
    def _plan(self, ranked: list[int], budget: int) -> tuple[list[Shown], bool]:
        if budget <= 0 or not ranked:
            return [], bool(ranked)
        index = self.index
        order = np.asarray(ranked, dtype=np.int64)
        matrix = index.cost_matrix[order]
        # A bare name tells a model almost nothing about code it has to use: symbol
        # modes show a signature at least (MINIMAL is the mode for a map of names).
        matrix[:, COARSEST_LEVEL + 1 :] = -1
        costs = np.ascontiguousarray(matrix).ravel()
        modules, groups = np.unique(index.symbol_module[order], return_inverse=True)
        group_costs = np.ascontiguousarray(index.header_costs[modules])
        groups = np.ascontiguousarray(groups, dtype=np.int64)
        coverage = int(budget * COVERAGE_SHARE[self.mode])
        chosen, _total = assemble(costs, len(LEVELS), groups, group_costs, budget, coverage)
        shown: list[Shown] = []
        for position, level in enumerate(chosen):
            if level < 0:
                continue
            symbol_id = ranked[position]
            item = self._block(symbol_id, int(level))
            if item is not None:
                shown.append(item)
        return shown, any(level < 0 for level in chosen)

    def _block(self, symbol_id: int, level: int) -> Shown | None:
        """The block at ``level``; if its text is gone (file changed since the scan),
        the finest coarser level whose cost is no higher, so the plan still holds."""
        symbol = self.index.symbols[symbol_id]
        planned = symbol.costs[level]
        texts = self.index.forms(symbol)
        for candidate in range(level, len(LEVELS)):
            cost = symbol.costs[candidate]
            if texts[candidate] is not None and 0 <= cost <= planned:
                return Shown(symbol_id, candidate, symbol.marker + texts[candidate])
        return None

    # -- rendering ----------------------------------------------------------------------
    def _render(self, head: str, head_cost: int, shown: list[Shown]) -> tuple[str, int]:
        files = group_by_file(self.index, shown)
        if self.format == "md":
            tokens = head_cost + sum(self.index.modules[m].header_cost for m, _ in files)
            tokens += sum(self.index.symbols[s.symbol].costs[s.level] for s in shown)
            return render_markdown(self.index, head, files), tokens
        render = render_json if self.format == "json" else render_xml
        text = render(self.index, self.mode.value, self.query, files)
        return text, self.index.counter.count(text)

    def _minimal(self) -> ContextResult:
        from llmstruct.engine.minimal import build_minimal

        return build_minimal(self.index, self.budget, self.format)


def _top_hits(lexical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best lexical hits (at most ``_SEEDS``, score > 0) and their scores scaled to 1."""
    top = np.argsort(-lexical, kind="stable")[:_SEEDS]
    top = top[lexical[top] > 0]
    return top, (lexical[top] / lexical[top].max() if len(top) else lexical[top])


def _normalised(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def _order(score: np.ndarray, limit: int, positive_only: bool = True) -> list[int]:
    # Highest score first; equal scores in struct order (stable), so runs repeat exactly.
    # A partial selection first: sorting 50k scores per request costs milliseconds.
    if limit < len(score):
        cut = np.partition(-score, limit - 1)[limit - 1]
        candidates = np.flatnonzero(-score <= cut)
    else:
        candidates = np.arange(len(score))
    order = candidates[np.argsort(-score[candidates], kind="stable")][:limit]
    if positive_only:
        order = order[score[order] > 0]
    return order.tolist()

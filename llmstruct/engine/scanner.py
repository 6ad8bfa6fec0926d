"""The project scanner: discovery, then parallel parsing, with a content-hash cache.

``ProjectScanner.scan_async(options)`` is an async iterator of ``ScanProgress``,
one per discovered file, in completion order; afterwards ``scanner.result`` holds
the ``ScanResult``. ``scan(options)`` is the same for synchronous callers.
``llmstruct.engine.project`` builds struct.json on top of this.

Strategy: the main process walks the tree; when a cache exists it reads and
hashes every file and serves unchanged content from the cache (a warm re-scan
parses nothing). The remaining files are grouped into batches of similar total
size and parsed in a process pool (tree-sitter parsing and token counting are
CPU-bound and hold the GIL). Small jobs skip the pool: starting processes costs
more than parsing a few files.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from llmstruct.engine.analyze import analyze_path, content_hash
from llmstruct.engine.discovery import (
    DEFAULT_MAX_FILE_SIZE,
    DiscoveryOptions,
    Skip,
    discover,
)
from llmstruct.engine.scancache import ScanCache
from llmstruct.engine.tokens import DEFAULT_ENCODING, get_encoding

#: Below this many files to parse, parse in-process: a pool costs ~0.1 s to start.
_POOL_THRESHOLD = 24
#: Target bytes per batch sent to a worker: large enough to amortise the round
#: trip, small enough that the last batches keep both cores busy.
_BATCH_BYTES = 256 * 1024
_BATCH_FILES = 64


@dataclass(slots=True)
class ScanOptions:
    root: Path
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    secret_patterns: list[str] = field(default_factory=list)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    use_cache: bool = True
    workers: int | None = None  # None: one per core
    encoding: str = DEFAULT_ENCODING


@dataclass(slots=True)
class ScanProgress:
    """One file done. ``result`` is its analysis record, or None when ``error`` says
    why it could not be analysed, or when a warm re-scan served the whole struct
    from the cache without loading per-file records (then ``cached`` is True)."""

    current: int
    total: int
    file: str
    result: dict[str, Any] | None = None
    error: str | None = None
    cached: bool = False


@dataclass(slots=True)
class ScanResult:
    root: Path
    records: dict[str, dict[str, Any]]  # path -> analysis record
    errors: dict[str, str]  # path -> why it could not be analysed
    skipped: list[Skip]
    parsed: int
    cached: int
    seconds: float
    encoding: str = DEFAULT_ENCODING
    #: Identifies the exact input (paths, contents, skips, settings); None when a
    #: file could not be read, since the input is then not reproducible.
    fingerprint: str | None = None


class ProjectScanner:
    """Scans a project; reusable, one scan at a time per instance."""

    def __init__(self) -> None:
        self.result: ScanResult | None = None

    async def scan_async(self, options: ScanOptions) -> AsyncIterator[ScanProgress]:
        run = ScanRun(options)
        for progress in run.serve_cached():
            yield progress
        loop = asyncio.get_running_loop()
        with run.executor() as pool:
            futures = [asyncio.wrap_future(f, loop=loop) for f in run.submit_all(pool)]
            for next_done in asyncio.as_completed(futures):
                for progress in run.take(await next_done):
                    yield progress
        self.result = run.finish()

    def scan(
        self, options: ScanOptions, on_progress: Callable[[ScanProgress], None] | None = None
    ) -> ScanResult:
        """Synchronous scan; ``on_progress(ScanProgress)`` is called per file."""
        run = ScanRun(options)
        for progress in run.iterate():
            if on_progress is not None:
                on_progress(progress)
        self.result = run.finish()
        return self.result


class ScanRun:
    """State of one scan, shared by the sync and async drivers.

    Construction discovers the files and, when a cache exists, hashes them, so
    ``fingerprint`` is known before anything is parsed or any record is loaded.
    """

    def __init__(self, options: ScanOptions) -> None:
        self.started = time.perf_counter()
        self.options = options
        self.root = Path(options.root).resolve()
        get_encoding(options.encoding)  # fail early, in the caller, if it cannot load
        found = discover(
            self.root,
            DiscoveryOptions(
                include=options.include,
                exclude=options.exclude,
                secret_patterns=options.secret_patterns,
                max_file_size=options.max_file_size,
            ),
        )
        self.files = found.files
        self.skipped = found.skipped
        self.total = len(found.files)
        self.cache = ScanCache(self.root, options.encoding, enabled=options.use_cache)
        self.records: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.done = 0
        self.cached = 0
        self.failed_hashes: dict[str, dict[str, Any]] = {}
        #: path -> content hash (None: unreadable); filled up front only with a cache.
        self.hashes: dict[str, str | None] = {}
        if self.cache.exists():
            for item in self.files:
                self.hashes[item.path] = self._hash(item.path)
        self._planned = False
        self.todo: list[tuple[str, int]] = []  # (path, size) still to parse
        self._hits: list[tuple[str, dict[str, Any]]] = []

    def _hash(self, path: str) -> str | None:
        try:
            with open(self.root / path, "rb") as handle:
                return content_hash(handle.read())
        except OSError:
            return None  # the worker reports the error properly

    def fingerprint(self) -> str | None:
        """Digest of everything the struct is built from; None if not reproducible."""
        if len(self.hashes) != self.total or None in self.hashes.values():
            return None
        return input_fingerprint(self.hashes, self.skipped, self.options.encoding)

    # -- cache -----------------------------------------------------------------
    def _plan(self) -> None:
        if self._planned:
            return
        self._planned = True
        for item in self.files:
            digest = self.hashes.get(item.path)
            record = self.cache.get(digest, item.path) if digest else None
            if record is None:
                self.todo.append((item.path, item.size))
            else:
                self._hits.append((item.path, record))

    def serve_cached(self) -> Iterator[ScanProgress]:
        self._plan()
        for path, record in self._hits:
            self.cached += 1
            if "error" in record:
                self.failed_hashes[record["hash"]] = record
                yield self._progress(path, None, record["error"], cached=True)
            else:
                yield self._progress(path, record, None, cached=True)
        self._hits = []

    def serve_all_cached(self) -> Iterator[ScanProgress]:
        """Progress for every file when the whole struct comes from the cache."""
        for item in self.files:
            self.done += 1
            self.cached += 1
            yield ScanProgress(self.done, self.total, item.path, None, None, cached=True)

    # -- parsing ---------------------------------------------------------------
    def executor(self) -> Executor:
        self._plan()
        workers = self.options.workers or os.cpu_count() or 1
        if len(self.todo) < _POOL_THRESHOLD or workers == 1:
            # One thread, not this one: an async caller's event loop keeps running.
            return ThreadPoolExecutor(max_workers=1)
        # fork: workers inherit the imported grammars and the loaded encoding, so
        # they start in milliseconds instead of re-importing everything.
        context = multiprocessing.get_context("fork" if os.name == "posix" else None)
        return ProcessPoolExecutor(max_workers=workers, mp_context=context)

    def submit_all(self, pool: Executor) -> list[Future]:
        return [
            pool.submit(_analyze_batch, str(self.root), batch, self.options.encoding)
            for batch in _batches(self.todo)
        ]

    def take(self, results: list[tuple[str, str | None, Any, str | None]]) -> list[ScanProgress]:
        progress = []
        for path, digest, record, error in results:
            self.hashes[path] = digest
            if error is not None and digest is not None:
                # The content itself cannot be analysed (binary, parser failure): that
                # holds until the content changes, so the verdict is cached too.
                self.failed_hashes[digest] = {"path": path, "hash": digest, "error": error}
            progress.append(self._progress(path, record, error))
        return progress

    def iterate(self) -> Iterator[ScanProgress]:
        yield from self.serve_cached()
        with self.executor() as pool:
            for future in as_completed(self.submit_all(pool)):
                yield from self.take(future.result())

    def _progress(self, path, record, error, cached=False) -> ScanProgress:
        self.done += 1
        if record is not None:
            self.records[path] = record
            self.hashes[path] = record["hash"]
        else:
            self.errors[path] = error or "unknown error"
        return ScanProgress(self.done, self.total, path, record, error, cached)

    def finish(self) -> ScanResult:
        if self.todo or self.failed_hashes:  # something new to remember
            by_hash = {record["hash"]: record for record in self.records.values()}
            self.cache.save({**self.failed_hashes, **by_hash})
        return ScanResult(
            root=self.root,
            records=dict(sorted(self.records.items())),
            errors=dict(sorted(self.errors.items())),
            skipped=self.skipped,
            parsed=self.done - self.cached,
            cached=self.cached,
            seconds=time.perf_counter() - self.started,
            encoding=self.options.encoding,
            fingerprint=self.fingerprint(),
        )


def input_fingerprint(hashes: dict[str, str | None], skipped: list[Skip], encoding: str) -> str:
    from llmstruct import __version__

    payload = orjson.dumps(
        [__version__, encoding, sorted(hashes.items()), [(s.path, s.reason) for s in skipped]]
    )
    return hashlib.sha256(payload).hexdigest()


def _batches(todo: list[tuple[str, int]]) -> Iterator[list[str]]:
    # Largest files first, so the long poles start early and the tail stays short.
    batch: list[str] = []
    size = 0
    for path, nbytes in sorted(todo, key=lambda item: -item[1]):
        batch.append(path)
        size += nbytes
        if size >= _BATCH_BYTES or len(batch) >= _BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _analyze_batch(root: str, paths: list[str], encoding: str) -> list[tuple]:
    """Worker entry point: analyse several files, never raising."""
    results = []
    for path in paths:
        try:
            digest, record, error = analyze_path(root, path, encoding)
        except Exception as exc:  # defensive: a worker must always answer
            digest, record, error = None, None, f"{type(exc).__name__}: {exc}"
        results.append((path, digest, record, error))
    return results


__all__ = ["ProjectScanner", "ScanOptions", "ScanProgress", "ScanResult", "ScanRun"]

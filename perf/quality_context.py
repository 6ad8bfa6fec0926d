"""Context quality on real code nobody here wrote: the Python standard library.

Two measures, printed as a table and written as JSON (``-o FILE``):

1. **Public-API coverage (FULL, 8,000 tokens).** For each package (asyncio,
   email, json, logging), scan the package alone and build FULL context at 8,000
   tokens. A public name (the package's runtime ``__all__``) counts as covered
   when the symbol that defines it appears at signature level or finer; a name
   that is a submodule (``email.utils``) when that module's code appears. Names
   that are neither functions, classes nor modules (constants such as
   ``logging.DEBUG``) have no definition in struct.json and count as misses; the
   table also shows the share among the names that do have one.
2. **FOCUSED hit rate.** Questions written by hand about those packages, each
   with the file and symbol that answers it, asked against the struct of the
   *whole* standard library at the default FOCUSED budget (4,000 tokens): a hit
   when that symbol appears at signature level or finer.

Run:  python perf/quality_context.py [--stdlib DIR] [-o perf/results/quality.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from llmstruct.engine.context import ContextManager
from llmstruct.engine.project import scan_to_struct
from llmstruct.engine.scanner import ScanOptions

PACKAGES = ("asyncio", "email", "json", "logging")
SHOWN = ("full", "doc", "signature")

#: (question, file, symbol qualname) — the definition that answers the question.
QUESTIONS = [
    (
        "How do I run a coroutine from synchronous code until it finishes?",
        "asyncio/runners.py",
        "run",
    ),
    (
        "wait for several awaitables at once and collect all their results",
        "asyncio/tasks.py",
        "gather",
    ),
    ("cancel an operation if it takes longer than a timeout", "asyncio/tasks.py", "wait_for"),
    (
        "open a TCP connection and get a stream reader and writer",
        "asyncio/streams.py",
        "open_connection",
    ),
    ("start a TCP server that serves clients with streams", "asyncio/streams.py", "start_server"),
    ("a first-in first-out queue for coroutines", "asyncio/queues.py", "Queue"),
    ("schedule a coroutine to run concurrently as a task", "asyncio/tasks.py", "create_task"),
    ("sleep without blocking the event loop", "asyncio/tasks.py", "sleep"),
    (
        "run a subprocess and read its output asynchronously",
        "asyncio/subprocess.py",
        "create_subprocess_exec",
    ),
    (
        "limit how many coroutines enter a section at once with a counter",
        "asyncio/locks.py",
        "Semaphore",
    ),
    ("serialize a Python object to a JSON string", "json/__init__.py", "dumps"),
    ("parse a JSON document from a string", "json/__init__.py", "loads"),
    (
        "customise how objects that JSON cannot serialize are encoded",
        "json/encoder.py",
        "JSONEncoder.default",
    ),
    (
        "error raised when a JSON document is invalid, with line and column",
        "json/decoder.py",
        "JSONDecodeError",
    ),
    ("parse an email message from a string", "email/__init__.py", "message_from_string"),
    ("parse raw email bytes into a message object", "email/parser.py", "BytesParser"),
    (
        "split a list of addresses from an email header into names and addresses",
        "email/utils.py",
        "getaddresses",
    ),
    ("format a date for an email Date header", "email/utils.py", "formatdate"),
    ("build a multipart email with attachments", "email/mime/multipart.py", "MIMEMultipart"),
    ("get a logger by name", "logging/__init__.py", "getLogger"),
    (
        "configure logging with a basic handler and format in one call",
        "logging/__init__.py",
        "basicConfig",
    ),
    (
        "write log records to a file that rotates when it reaches a size",
        "logging/handlers.py",
        "RotatingFileHandler",
    ),
    (
        "rotate log files at midnight or on a time interval",
        "logging/handlers.py",
        "TimedRotatingFileHandler",
    ),
    ("configure logging from a dictionary", "logging/config.py", "dictConfig"),
    (
        "format a log record into text with a format string",
        "logging/__init__.py",
        "Formatter.format",
    ),
    ("send log records to a remote syslog daemon", "logging/handlers.py", "SysLogHandler"),
]


def _copy(source: Path, target: Path) -> Path:
    if not target.exists():
        shutil.copytree(
            source, target, ignore=shutil.ignore_patterns("site-packages", "__pycache__")
        )
    return target


def _manager(root: Path) -> ContextManager:
    (root / "struct.json").write_bytes(scan_to_struct(ScanOptions(root)).data)
    return ContextManager(root / "struct.json", root=root)


def coverage(stdlib: Path, work: Path) -> dict:
    results = {}
    for package in PACKAGES:
        root = _copy(stdlib / package, work / package)
        manager = _manager(root)
        _, index = manager.index()
        public = sorted(set(importlib.import_module(package).__all__))
        result = manager.build_context("FULL", None, 8000)
        shown = {uid for uid, level in result.symbols if level in SHOWN}
        shown_modules = {index.symbols[index.by_uid[uid]].module for uid in shown}
        defined, covered, missed = 0, 0, []
        for name in public:
            candidates = [s for s in index.symbols if s.kind != "method" and s.name == name]
            modules = {
                index.by_path[p]
                for p in (f"{name}.py", f"{name}/__init__.py")
                if p in index.by_path
            }
            if candidates or modules:
                defined += 1
            if any(s.uid in shown for s in candidates) or modules & shown_modules:
                covered += 1
            else:
                missed.append(name)
        results[package] = {
            "public": len(public),
            "with_definition": defined,
            "covered": covered,
            "coverage": covered / len(public),
            "coverage_of_defined": covered / defined if defined else 0.0,
            "tokens": result.token_count,
            "missed": missed,
        }
    return results


def hit_rate(stdlib: Path, work: Path) -> dict:
    manager = _manager(_copy(stdlib, work / "stdlib"))
    hits, rows = 0, []
    for question, path, qualname in QUESTIONS:
        result = manager.build_context("FOCUSED", question, 4000)
        shown = dict(result.symbols)
        module_id = next(m.module_id for m in manager.index()[1].modules if m.path == path)
        uid = f"{module_id}#{qualname}"
        hit = shown.get(uid) in SHOWN
        hits += hit
        rank = next((i for i, (u, _) in enumerate(result.symbols) if u == uid), None)
        rows.append({"question": question, "answer": uid, "hit": hit, "position": rank})
    return {
        "questions": len(QUESTIONS),
        "hits": hits,
        "hit_rate": hits / len(QUESTIONS),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdlib", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    work = Path(tempfile.gettempdir()) / "llmstruct-quality"
    work.mkdir(exist_ok=True)
    stdlib = Path(args.stdlib)
    report = {"coverage": coverage(stdlib, work), "focused": hit_rate(stdlib, work)}
    print(
        f"{'package':<10} {'public':>6} {'defined':>7} {'covered':>7} {'share':>7} {'of defined':>10}"
    )
    for package, row in report["coverage"].items():
        print(
            f"{package:<10} {row['public']:>6} {row['with_definition']:>7} {row['covered']:>7} "
            f"{row['coverage']:>7.1%} {row['coverage_of_defined']:>10.1%}"
        )
    totals = report["coverage"].values()
    public = sum(r["public"] for r in totals)
    covered = sum(r["covered"] for r in totals)
    defined = sum(r["with_definition"] for r in totals)
    print(
        f"{'all':<10} {public:>6} {defined:>7} {covered:>7} {covered / public:>7.1%} "
        f"{covered / defined:>10.1%}"
    )
    focused = report["focused"]
    print(
        f"\nFOCUSED hit rate: {focused['hits']}/{focused['questions']} = {focused['hit_rate']:.1%}"
    )
    for row in focused["rows"]:
        if not row["hit"]:
            print(f"  miss: {row['question']!r} -> {row['answer']} (position {row['position']})")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())

"""The ``llmstruct`` command line. Each subcommand calls the engine in-process.

Errors the user can fix (a missing root, a bad glob, an unwritable output, a bad
config) are one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from pathlib import Path

from llmstruct import __version__
from llmstruct.config import ConfigError, load_scan_config
from llmstruct.engine.discovery import DiscoveryError
from llmstruct.engine.project import StructBuild, scan_to_struct
from llmstruct.engine.scanner import ScanOptions, ScanProgress
from llmstruct.engine.tokens import EncodingUnavailable
from llmstruct.migration import add_parsers as add_migration_commands
from llmstruct.server.serve import add_parser as add_serve_parser
from llmstruct.store.atomic import atomic_write_bytes
from llmstruct.store.structfile import DEFAULT_NAME

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def _version_line() -> str:
    # Importing the selectors records which twin each one loaded.
    from llmstruct._ext import (  # noqa: F401
        IMPLEMENTATIONS,
        assemble,
        csr,
        httphead,
        lru,
        protocol,
        request,
        router,
    )
    from llmstruct.server import app, metrics, middleware  # noqa: F401  (the server's selectors)

    with contextlib.suppress(ImportError):  # httptools missing or too old: not listed
        from llmstruct._ext import llhttp  # noqa: F401

    twins = ", ".join(f"{name}={impl}" for name, impl in sorted(IMPLEMENTATIONS.items()))
    return f"llmstruct {__version__} (extensions: {twins})"


class _VersionAction(argparse.Action):
    """``--version``: one line, never wrapped (argparse's own action wraps it at the
    terminal's width), and the twins are only imported when it is asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:  # fmt: skip
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(_version_line())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmstruct",
        description="Map a codebase into struct.json and serve token-budgeted context from it.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the version and the extension build"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    scan = commands.add_parser(
        "scan",
        help="scan a source tree into struct.json",
        description="Scan ROOT (default: the current directory) and write struct.json.",
    )
    scan.add_argument("root", nargs="?", default=".", help="project root (default: .)")
    scan.add_argument("-o", "--output", help="output file (default: ROOT/struct.json)")
    scan.add_argument(
        "--include", action="append", default=[], metavar="GLOB",
        help="only scan files matching GLOB (gitignore syntax; repeatable)",
    )  # fmt: skip
    scan.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB",
        help="skip files matching GLOB (gitignore syntax; repeatable)",
    )  # fmt: skip
    scan.add_argument("--no-cache", action="store_true", help="ignore and do not update the cache")
    scan.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    scan.set_defaults(handler=_cmd_scan)

    context = commands.add_parser(
        "context",
        help="print token-budgeted context for an LLM",
        description=(
            "Print context built from struct.json to stdout and a one-line summary to "
            "stderr. Scans first when there is no struct.json yet."
        ),
    )
    context.add_argument(
        "--mode", default="FOCUSED", metavar="MODE",
        help="MINIMAL, FOCUSED (default), FULL or SESSION",
    )  # fmt: skip
    context.add_argument("--query", "-q", metavar="TEXT", help="what the context is for")
    context.add_argument(
        "--budget", metavar="N",
        help="token budget (defaults: MINIMAL 1000, FOCUSED 4000, FULL 16000, SESSION 8000)",
    )  # fmt: skip
    context.add_argument("--format", default="md", metavar="FMT", help="md (default), json or xml")
    context.add_argument(
        "--include-file", action="append", default=[], metavar="PATH",
        help="a file (relative to the root) the context must centre on; repeatable",
    )  # fmt: skip
    context.add_argument("--since", metavar="REF", help="SESSION: also what changed since REF")
    context.add_argument(
        "--struct", metavar="FILE", help="struct.json to use (default: ROOT/struct.json)"
    )
    context.add_argument("--root", default=".", help="project root (default: .)")
    context.set_defaults(handler=_cmd_context)

    query = commands.add_parser(
        "query",
        help="ask an OpenAI-compatible model a question about the code",
        description=(
            "Build context for QUESTION and stream the model's answer to stdout. The "
            "backend comes from LLMSTRUCT_LLM_BASE_URL, LLMSTRUCT_LLM_MODEL and "
            "LLMSTRUCT_LLM_API_KEY (Ollama, vLLM, llama.cpp server, OpenAI)."
        ),
    )
    query.add_argument("question", help="what to ask (1 to 1000 characters)")
    query.add_argument("--mode", default="FOCUSED", metavar="MODE", help="context mode")
    query.add_argument("--include-file", action="append", default=[], metavar="PATH")
    query.add_argument("--model", help="override LLMSTRUCT_LLM_MODEL")
    query.add_argument("--budget", metavar="N", help="context token budget")
    query.add_argument("--root", default=".", help="project root (default: .)")
    query.set_defaults(handler=_cmd_query)

    add_serve_parser(commands)  # serve
    add_migration_commands(commands)  # engine-call, serve-fastapi
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"llmstruct: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("llmstruct: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``llmstruct ... | head``): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


# -- context -------------------------------------------------------------------------
def _cmd_context(args: argparse.Namespace) -> int:
    from llmstruct.engine.context import ContextError, ContextManager, ContextMode
    from llmstruct.engine.gitstate import GitError
    from llmstruct.store.structfile import StructFileError

    try:
        mode = ContextMode.parse(args.mode)
    except ContextError as exc:
        raise UsageError(str(exc)) from None
    budget = _budget(args.budget)
    root = Path(args.root)
    _require_dir(root)
    if args.struct:
        struct_path = Path(args.struct)
        if not struct_path.exists():
            raise UsageError(f"{struct_path}: no such file")
    else:
        struct_path = _ensure_struct(root)
    try:
        manager = ContextManager(struct_path, root=root)
        result = manager.build_context(
            mode, args.query, budget, args.include_file, args.format, args.since
        )
    except (ContextError, StructFileError, GitError, EncodingUnavailable) as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(result.data)
    sys.stdout.flush()
    print(
        f"llmstruct: {result.mode} context: {result.token_count}/{result.budget} tokens, "
        f"{result.file_count} files, {len(result.symbols)} symbols"
        f"{', truncated' if result.truncated else ''}",
        file=sys.stderr,
    )
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    import asyncio

    from llmstruct.engine.ai_bridge import AIBridge, LLMConfig, LLMError, StreamEnd
    from llmstruct.engine.context import ContextError, ContextManager

    if not 1 <= len(args.question) <= 1000:
        raise UsageError("the question must be 1 to 1000 characters long")
    budget = _budget(args.budget)
    root = Path(args.root)
    _require_dir(root)
    try:
        config = LLMConfig.from_env()
        if args.model:
            config = dataclasses.replace(config, model=args.model)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    struct_path = _ensure_struct(root)

    async def run() -> StreamEnd | None:
        async with AIBridge(config, ContextManager(struct_path, root=root)) as bridge:
            stream = bridge.stream(args.question, args.mode, args.include_file, None, budget)
            async with contextlib.aclosing(stream) as pieces:
                async for piece in pieces:
                    if isinstance(piece, StreamEnd):
                        return piece
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        return None

    try:
        end = asyncio.run(run())
    except (ContextError, EncodingUnavailable) as exc:
        raise UsageError(str(exc)) from None
    except LLMError as exc:
        print(f"\nllmstruct: error: {exc.detail}", file=sys.stderr)
        return 1
    sys.stdout.write("\n")
    if end is not None:
        used = end.context_used
        usage = end.token_usage
        print(
            f"llmstruct: {used.get('mode')} context {used.get('token_count')} tokens; "
            f"model used {usage.get('total_tokens', '?')} tokens in {end.processing_time:.2f}s",
            file=sys.stderr,
        )
    return 0


def _ensure_struct(root: Path) -> Path:
    """ROOT/struct.json, scanning ROOT first when there is none yet."""
    struct_path = root / DEFAULT_NAME
    if not struct_path.exists():
        print(f"llmstruct: no {struct_path}; scanning {root} first", file=sys.stderr)
        _cmd_scan(argparse.Namespace(
            root=str(root), output=None, include=[], exclude=[], no_cache=False, quiet=True
        ))  # fmt: skip
    return struct_path


def _require_dir(root: Path) -> None:
    if not root.is_dir():
        raise UsageError(f"{root}: {'not a directory' if root.exists() else 'no such directory'}")


def _budget(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        budget = int(value)
    except ValueError:
        raise UsageError(f"--budget must be a whole number of tokens, not {value!r}") from None
    if budget < 0:
        raise UsageError(f"--budget must not be negative, not {budget}")
    return budget


# -- scan --------------------------------------------------------------------------
def _cmd_scan(args: argparse.Namespace) -> int:
    root = Path(args.root)
    _require_dir(root)
    try:
        config = load_scan_config(root)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    output = Path(args.output or config.output or root / DEFAULT_NAME)
    if not output.is_absolute() and not args.output and config.output:
        output = root / output
    _check_writable(output)
    options = ScanOptions(
        root=root,
        include=[*config.include, *args.include],
        exclude=[*config.exclude, *args.exclude],
        secret_patterns=config.secret_patterns,
        max_file_size=config.max_file_size,
        use_cache=not args.no_cache,
    )
    progress = _ProgressBar(enabled=not args.quiet and sys.stderr.isatty())
    try:
        build = scan_to_struct(options, on_progress=progress.update)
    except (DiscoveryError, EncodingUnavailable) as exc:
        raise UsageError(str(exc)) from None
    finally:
        progress.close()
    try:
        atomic_write_bytes(output, build.data)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    if not args.quiet:
        _print_summary(build, output)
    return 0


def _check_writable(output: Path) -> None:
    parent = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise UsageError(f"cannot write {output}: it is a directory")
    if not parent.is_dir():
        raise UsageError(f"cannot write {output}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise UsageError(f"cannot write {output}: permission denied")


def _print_summary(build: StructBuild, output: Path) -> None:
    stats = build.stats
    print(
        f"Scanned {build.files} files "
        f"({build.parsed} parsed, {build.cached} from cache) in {build.seconds:.2f}s\n"
        f"  modules {stats['modules_count']}, functions {stats['functions_count']}, "
        f"classes {stats['classes_count']}, call edges {stats['call_edges_count']}, "
        f"errors {len(build.errors)}, warnings {len(build.warnings)}, "
        f"skipped {len(build.skipped)}"
    )
    notes = [f"  error: {path}: {error}" for path, error in build.errors.items()]
    notes += [f"  warning: {w['path']}: {w['warning']}" for w in build.warnings]
    for line in notes[:20]:
        print(line)
    if len(notes) > 20:
        print(f"  ... and {len(notes) - 20} more (see metadata.scan in the output)")
    print(f"Wrote {output}")


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn at most ~20 times a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0
        self.drawn = False

    def update(self, progress: ScanProgress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.05 and progress.current != progress.total:
            return
        self.last = now
        width = 30
        filled = width * progress.current // max(progress.total, 1)
        name = progress.file if len(progress.file) <= 40 else "..." + progress.file[-37:]
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {progress.current}/{progress.total} "
            f"{name:<40}"
        )
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())

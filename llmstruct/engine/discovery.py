"""Find the source files of a project: what a scan parses, and what it skips and why.

Rules, in the order they apply to each path (relative to the root, POSIX style):

1. Default excluded directories (``DEFAULT_EXCLUDED_DIRS``) anywhere in the tree,
   ``build/`` and ``dist/`` at the root only (``go/build`` is a real package), any
   virtualenv (a directory holding ``pyvenv.cfg``) and any directory tagged with
   ``CACHEDIR.TAG`` (the Cache Directory Tagging Spec; Cargo's ``target/`` has one).
2. ``.gitignore`` files, nested ones too, each relative to its own directory, with
   git's semantics (pathspec's ``GitIgnoreSpec``: last match wins, ``!`` re-includes).
3. User ``exclude`` globs, then user ``include`` globs (when given, a file must
   match one). Globs use gitignore syntax: ``*.py``, ``src/**``, ``tests/``.
4. Secret files (``DEFAULT_SECRET_PATTERNS`` plus the user's) are never read.
5. Only files a parser understands are returned; larger than ``max_file_size`` is
   a recorded skip.

Symlinks are followed only when their target stays inside the root, and each real
directory is entered once, so loops end. Unreadable directories are recorded as
skips; discovery never raises for anything found inside the tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from llmstruct.engine.parsers import supported_extensions

DEFAULT_EXCLUDED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr",
        "node_modules", "bower_components", "site-packages", "dist-packages",
        "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
        ".tox", ".nox", ".venv", ".eggs", ".cache", ".llmstruct_cache",
        ".idea", ".vscode",
    }
)  # fmt: skip
# Not "venv" or "env" by name: the standard library has a real ``venv`` package.
# Virtualenvs are recognised by their ``pyvenv.cfg`` instead, whatever their name.
ROOT_ONLY_EXCLUDED_DIRS = frozenset({"build", "dist"})

#: Never read: keys, certificates' private halves, credentials, dotenv files.
DEFAULT_SECRET_PATTERNS = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".netrc", ".pgpass", ".htpasswd", ".npmrc", ".pypirc",
    "*.tfstate", "*secret*.json", "credentials*.json",
)  # fmt: skip

#: 2 MiB: far above hand-written source (CPython's largest module is ~0.7 MB); larger
#: files are generated tables or bundles that would swamp a context window anyway.
DEFAULT_MAX_FILE_SIZE = 2 * 1024 * 1024


class DiscoveryError(ValueError):
    """Bad options (an unusable root or glob): reported to the user, never a traceback."""


@dataclass(slots=True)
class DiscoveryOptions:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    secret_patterns: list[str] = field(default_factory=list)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    respect_gitignore: bool = True


@dataclass(slots=True)
class FoundFile:
    path: str  # relative to the root, POSIX separators
    size: int
    mtime_ns: int
    inode: int


@dataclass(slots=True)
class Skip:
    path: str
    reason: str


@dataclass(slots=True)
class Discovery:
    files: list[FoundFile]
    skipped: list[Skip]


def compile_globs(patterns: Iterable[str], what: str) -> pathspec.PathSpec | None:
    """Compile user globs, or raise DiscoveryError naming the bad one."""
    patterns = list(patterns)
    if not patterns:
        return None
    for pattern in patterns:
        if not pattern.strip():
            raise DiscoveryError(f"empty {what} pattern")
        if pattern.count("[") != pattern.count("]"):
            raise DiscoveryError(f"bad {what} pattern {pattern!r}: unbalanced '['")
    try:
        return pathspec.GitIgnoreSpec.from_lines(patterns)
    except Exception as exc:  # pathspec raises several types for malformed globs
        raise DiscoveryError(f"bad {what} pattern: {exc}") from None


def discover(root: Path, options: DiscoveryOptions | None = None) -> Discovery:
    """Walk ``root`` and return the parseable files (sorted by path) and the skips."""
    options = options or DiscoveryOptions()
    if not root.exists():
        raise DiscoveryError(f"{root}: no such directory")
    if not root.is_dir():
        raise DiscoveryError(f"{root}: not a directory")
    walker = _Walker(root.resolve(), options)
    walker.walk()
    walker.files.sort(key=lambda found: found.path)
    walker.skipped.sort(key=lambda skip: skip.path)
    return Discovery(walker.files, walker.skipped)


class _Walker:
    def __init__(self, root: Path, options: DiscoveryOptions) -> None:
        self.root = root
        self.root_str = str(root)
        self.options = options
        self.extensions = supported_extensions()
        self.include = compile_globs(options.include, "include")
        self.exclude = compile_globs(options.exclude, "exclude")
        secrets = [*DEFAULT_SECRET_PATTERNS, *options.secret_patterns]
        self.secrets = compile_globs(secrets, "secret")
        self.files: list[FoundFile] = []
        self.skipped: list[Skip] = []
        self._seen_dirs: set[tuple[int, int]] = set()

    def walk(self) -> None:
        # Iterative depth-first walk; each stack entry carries the gitignore specs in
        # force for that directory as (directory prefix, spec) pairs.
        stack: list[tuple[str, str, list[tuple[str, pathspec.PathSpec]]]] = [
            (self.root_str, "", [])
        ]
        while stack:
            real_dir, rel_dir, ignores = stack.pop()
            entries = self._list(real_dir, rel_dir)
            if entries is None:
                continue
            ignores = self._with_gitignore(real_dir, rel_dir, ignores)
            for entry in sorted(entries, key=lambda e: e.name, reverse=True):
                self._visit(entry, rel_dir, ignores, stack)

    def _list(self, real_dir: str, rel_dir: str) -> list[os.DirEntry[str]] | None:
        try:
            info = os.stat(real_dir)
            key = (info.st_dev, info.st_ino)
            if key in self._seen_dirs:
                self.skipped.append(
                    Skip(rel_dir or ".", "directory already scanned (symlink loop)")
                )
                return None
            self._seen_dirs.add(key)
            with os.scandir(real_dir) as it:
                return list(it)
        except OSError as exc:
            self.skipped.append(Skip(rel_dir or ".", f"cannot read directory: {exc.strerror}"))
            return None

    def _with_gitignore(
        self, real_dir: str, rel_dir: str, ignores: list[tuple[str, pathspec.PathSpec]]
    ) -> list[tuple[str, pathspec.PathSpec]]:
        if not self.options.respect_gitignore:
            return ignores
        gitignore = os.path.join(real_dir, ".gitignore")
        try:
            with open(gitignore, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return ignores
        try:
            spec = pathspec.GitIgnoreSpec.from_lines(lines)
        except Exception:
            self.skipped.append(
                Skip(_join(rel_dir, ".gitignore"), "unparseable .gitignore ignored")
            )
            return ignores
        return [*ignores, (rel_dir + "/" if rel_dir else "", spec)]

    def _visit(self, entry: os.DirEntry[str], rel_dir: str, ignores, stack) -> None:
        rel = _join(rel_dir, entry.name)
        try:
            is_link = entry.is_symlink()
            info = os.stat(entry.path)  # follows links; a dangling one raises
        except OSError as exc:
            self.skipped.append(Skip(rel, f"cannot stat: {exc.strerror}"))
            return
        real = entry.path
        if is_link:
            real = os.path.realpath(entry.path)
            if not _inside(real, self.root_str):
                self.skipped.append(Skip(rel, "symlink leads outside the root"))
                return
        if stat.S_ISDIR(info.st_mode):
            if self._dir_excluded(entry.name, rel, real, ignores):
                return
            stack.append((real, rel, ignores))
        elif stat.S_ISREG(info.st_mode):
            self._file(entry.name, rel, info, ignores)

    def _dir_excluded(self, name: str, rel: str, real: str, ignores) -> bool:
        if name in DEFAULT_EXCLUDED_DIRS or (name in ROOT_ONLY_EXCLUDED_DIRS and "/" not in rel):
            return True
        if os.path.exists(os.path.join(real, "pyvenv.cfg")) or os.path.exists(
            os.path.join(real, "CACHEDIR.TAG")
        ):
            return True
        if _ignored(rel + "/", ignores):
            return True
        return self.exclude is not None and self.exclude.match_file(rel + "/")

    def _file(self, name: str, rel: str, info: os.stat_result, ignores) -> None:
        if os.path.splitext(name)[1].lower() not in self.extensions:
            return
        if _ignored(rel, ignores):
            return
        if self.exclude is not None and self.exclude.match_file(rel):
            return
        if self.include is not None and not self.include.match_file(rel):
            return
        if self.secrets is not None and self.secrets.match_file(rel):
            self.skipped.append(Skip(rel, "secret file pattern"))
            return
        if info.st_size > self.options.max_file_size:
            limit = self.options.max_file_size
            self.skipped.append(Skip(rel, f"larger than the {limit} byte limit ({info.st_size})"))
            return
        self.files.append(FoundFile(rel, info.st_size, info.st_mtime_ns, info.st_ino))


def _join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{name}" if rel_dir else name


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _ignored(rel: str, ignores: list[tuple[str, pathspec.PathSpec]]) -> bool:
    """gitignore verdict: the deepest .gitignore with an opinion wins."""
    for prefix, spec in reversed(ignores):
        result = spec.check_file(rel[len(prefix) :])
        if result.include is not None:
            return bool(result.include)
    return False

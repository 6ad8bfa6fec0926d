"""What changed in a git working tree: the input of SESSION context.

Asks git itself (``git status --porcelain`` and ``git diff --name-only REF``);
a tree that is not a repository, or a machine without git, has no changes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

_TIMEOUT = 10


class GitError(ValueError):
    """A ref that git does not know: the user's mistake, reported as such."""


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True, text=True, timeout=_TIMEOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def changed_files(root: Path | None, since: str | None = None) -> list[str]:
    """Paths (relative to ``root``) changed in the working tree, plus since ``since``."""
    if root is None or _git(root, "rev-parse", "--is-inside-work-tree") is None:
        return []
    prefix = (_git(root, "rev-parse", "--show-prefix") or "").strip()
    changed: set[str] = set()
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", ".") or ""
    entries = status.split("\0")
    skip = False
    for entry in entries:
        if skip or len(entry) < 4:
            skip = False
            continue
        if entry[0] in "RC":
            skip = True  # the next entry is the rename's source path
        changed.add(entry[3:])
    if since:
        diff = _git(root, "diff", "--name-only", "-z", f"{since}", "--", ".")
        if diff is None:
            raise GitError(f"unknown git ref {since!r}")
        changed.update(p for p in diff.split("\0") if p)
    # git answers relative to the repository's top; the struct is relative to root.
    return sorted(p[len(prefix) :] for p in changed if p.startswith(prefix))

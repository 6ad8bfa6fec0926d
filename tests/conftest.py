"""Shared fixtures: small real source trees and the installed ``llmstruct`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakellm import fake_llm  # noqa: F401  (the fake OpenAI-compatible backend, for every test)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@pytest.fixture
def tree(tmp_path: Path):
    """``tree({"a.py": "..."})`` writes files under a fresh root and returns it."""
    return lambda files: write_tree(tmp_path / "project", files)


def llmstruct_command() -> list[str]:
    """The console script installed beside this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("llmstruct")
    if script.exists():
        return [str(script)]
    found = shutil.which("llmstruct")
    return [found] if found else [sys.executable, "-m", "llmstruct"]


@pytest.fixture
def run_cli():
    def run(
        *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "COLUMNS": "100", **(env or {})}
        return subprocess.run(
            [*llmstruct_command(), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    return run

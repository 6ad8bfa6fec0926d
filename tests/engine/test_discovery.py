"""Discovery: what a scan reads and what it skips, on real directory trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmstruct.engine.discovery import DiscoveryError, DiscoveryOptions, discover


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def _paths(root: Path, **options) -> list[str]:
    return [f.path for f in discover(root, DiscoveryOptions(**options)).files]


def test_finds_supported_sources_sorted_and_ignores_other_files(tmp_path: Path) -> None:
    _tree(tmp_path, {"b.py": "", "a/x.go": "", "a/y.rs": "", "README.md": "", "z.txt": ""})
    assert _paths(tmp_path) == ["a/x.go", "a/y.rs", "b.py"]


def test_honours_nested_gitignore_with_negation(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".gitignore": "generated/\n*_pb2.py\n",
            "generated/g.py": "",
            "keep_pb2.py": "",
            "pkg/.gitignore": "local_*.py\n!local_keep.py\n",
            "pkg/local_tmp.py": "",
            "pkg/local_keep.py": "",
            "pkg/mod.py": "",
        },
    )
    assert _paths(tmp_path) == ["pkg/local_keep.py", "pkg/mod.py"]


def test_skips_default_excluded_directories(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "node_modules/x/index.js": "",
            ".git/hooks/h.py": "",
            "__pycache__/m.py": "",
            "env1/pyvenv.cfg": "",
            "env1/lib/site.py": "",
            "build/out.py": "",
            "go/build/build.go": "",  # a real Go package: build/ is excluded at the root only
            "app.py": "",
        },
    )
    assert _paths(tmp_path) == ["app.py", "go/build/build.go"]


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    _tree(tmp_path, {"src/a.py": "", "src/b_test.py": "", "lib/c.py": "", "d.go": ""})
    assert _paths(tmp_path, include=["src/"], exclude=["*_test.py"]) == ["src/a.py"]


@pytest.mark.parametrize("bad", ["", "src/[a-z"])
def test_bad_glob_is_a_clear_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DiscoveryError, match="pattern"):
        discover(tmp_path, DiscoveryOptions(exclude=[bad]))


def test_secret_files_are_skipped_and_reported(tmp_path: Path) -> None:
    _tree(tmp_path, {"id_rsa.py": "", "deploy.key": "", "ok.py": "", "vault.py": ""})
    found = discover(tmp_path, DiscoveryOptions(secret_patterns=["vault.*"]))
    assert [f.path for f in found.files] == ["ok.py"]
    assert {s.path for s in found.skipped} == {"id_rsa.py", "vault.py"}


def test_large_file_is_a_recorded_skip(tmp_path: Path) -> None:
    _tree(tmp_path, {"big.py": "x = 1\n" * 1000, "small.py": ""})
    found = discover(tmp_path, DiscoveryOptions(max_file_size=100))
    assert [f.path for f in found.files] == ["small.py"]
    assert found.skipped[0].path == "big.py" and "limit" in found.skipped[0].reason


def test_symlink_outside_root_is_not_followed(tmp_path: Path) -> None:
    outside = _tree(tmp_path / "outside", {"secret.py": ""})
    root = _tree(tmp_path / "root", {"a.py": ""})
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "escape.py").symlink_to(outside / "secret.py")
    found = discover(root)
    assert [f.path for f in found.files] == ["a.py"]
    assert {s.path for s in found.skipped} == {"escape", "escape.py"}


def test_symlink_loop_ends(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"pkg/a.py": ""})
    (root / "pkg" / "loop").symlink_to(root, target_is_directory=True)
    found = discover(root)
    assert [f.path for f in found.files] == ["pkg/a.py"]
    assert any("loop" in s.reason for s in found.skipped)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads directories whatever their mode")
def test_unreadable_directory_is_a_recorded_skip(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"locked/a.py": "", "b.py": ""})
    (root / "locked").chmod(0)
    try:
        found = discover(root)
    finally:
        (root / "locked").chmod(0o755)
    assert [f.path for f in found.files] == ["b.py"]
    assert found.skipped[0].path == "locked"


def test_directory_that_cannot_be_listed_is_a_recorded_skip(tmp_path: Path, monkeypatch) -> None:
    # Runs as root too (where chmod 0 does not stop reads): the OS refusal is injected
    # at os.scandir, the one call discovery makes to list a directory.
    root = _tree(tmp_path, {"locked/a.py": "", "b.py": ""})
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = discover(root)
    assert [f.path for f in found.files] == ["b.py"]
    assert [(s.path, s.reason) for s in found.skipped] == [
        ("locked", "cannot read directory: Permission denied")
    ]


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match="no such directory"):
        discover(tmp_path / "nope")

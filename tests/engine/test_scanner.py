"""The scanner end to end on real trees: progress, parallelism, cache, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmstruct.engine import scanner as scanner_module
from llmstruct.engine.discovery import Discovery, FoundFile, discover
from llmstruct.engine.scanner import ProjectScanner, ScanOptions

MODULE = '''"""Module {n}."""

import os


def work_{n}(x, y=2):
    """Do work {n}."""
    return os.path.join(str(x), str(y))


class Thing{n}:
    def run(self):
        return work_{n}(1)
'''


def _many(count: int) -> dict[str, str]:
    return {f"pkg/m{n:03}.py": MODULE.format(n=n) for n in range(count)}


def test_progress_counts_every_file_once(tree) -> None:
    root = tree(_many(5))
    seen = []
    result = ProjectScanner().scan(ScanOptions(root), on_progress=seen.append)
    assert sorted(p.file for p in seen) == [f"pkg/m{n:03}.py" for n in range(5)]
    assert [p.current for p in seen] == [1, 2, 3, 4, 5]
    assert {p.total for p in seen} == {5}
    assert result.parsed == 5 and result.cached == 0 and not result.errors


def test_async_scan_yields_progress_then_result(tree) -> None:
    root = tree(_many(3))
    scanner = ProjectScanner()

    async def collect():
        return [p async for p in scanner.scan_async(ScanOptions(root))]

    progress = asyncio.run(collect())
    assert len(progress) == 3 and all(p.result is not None for p in progress)
    assert sorted(scanner.result.records) == [f"pkg/m{n:03}.py" for n in range(3)]


def test_process_pool_gives_the_same_records_as_one_worker(tree) -> None:
    root = tree(_many(60))  # above the in-process threshold: the pool is used
    pooled = ProjectScanner().scan(ScanOptions(root, use_cache=False, workers=2))
    single = ProjectScanner().scan(ScanOptions(root, use_cache=False, workers=1))
    assert pooled.records == single.records
    record = pooled.records["pkg/m007.py"]
    assert record["functions"][0]["name"] == "work_7"
    assert record["functions"][0]["tokens"][0] > 0


def test_warm_rescan_parses_nothing_and_a_change_parses_one_file(tree) -> None:
    root = tree(_many(30))
    first = ProjectScanner().scan(ScanOptions(root))
    warm = ProjectScanner().scan(ScanOptions(root))
    assert (warm.parsed, warm.cached) == (0, 30)
    assert warm.records == first.records
    (root / "pkg" / "m004.py").write_text(MODULE.format(n=4) + "\n\ndef extra():\n    pass\n")
    changed = ProjectScanner().scan(ScanOptions(root))
    assert (changed.parsed, changed.cached) == (1, 29)
    assert [f["name"] for f in changed.records["pkg/m004.py"]["functions"]] == ["work_4", "extra"]


def test_no_cache_reparses_everything(tree) -> None:
    root = tree(_many(3))
    ProjectScanner().scan(ScanOptions(root))
    again = ProjectScanner().scan(ScanOptions(root, use_cache=False))
    assert (again.parsed, again.cached) == (3, 0)


def test_corrupt_cache_is_rebuilt_not_fatal(tree) -> None:
    root = tree(_many(2))
    ProjectScanner().scan(ScanOptions(root))
    for cache_file in (root / ".llmstruct_cache").glob("scan-*.json"):
        cache_file.write_bytes(b"\x00garbage{")
    result = ProjectScanner().scan(ScanOptions(root))
    assert result.parsed == 2 and not result.errors
    assert ProjectScanner().scan(ScanOptions(root)).cached == 2


def test_binary_file_named_py_is_an_error_entry(tree) -> None:
    root = tree({"ok.py": "x = 1\n", "blob.py": b"\x7fELF\x00\x01\x02" * 100})
    result = ProjectScanner().scan(ScanOptions(root))
    assert list(result.records) == ["ok.py"]
    assert "binary" in result.errors["blob.py"]


def test_invalid_utf8_is_parsed_with_a_warning(tree) -> None:
    root = tree({"latin.py": b"# caf\xe9\ndef f(a):\n    return a\n"})
    record = ProjectScanner().scan(ScanOptions(root)).records["latin.py"]
    assert [f["name"] for f in record["functions"]] == ["f"]
    assert any("UTF-8" in w for w in record["warnings"])


def test_fifty_megabyte_generated_file_is_skipped(tree) -> None:
    root = tree({"ok.py": "x = 1\n"})
    with open(root / "generated.py", "wb") as handle:
        handle.write(b"DATA = [\n" + b"    12345678901234567890,\n" * 2_000_000 + b"]\n")
    assert (root / "generated.py").stat().st_size > 50_000_000
    result = ProjectScanner().scan(ScanOptions(root))
    assert list(result.records) == ["ok.py"]
    assert [s.path for s in result.skipped] == ["generated.py"]


def test_symlink_loop_does_not_stop_the_scan(tree) -> None:
    root = tree({"pkg/a.py": "def a():\n    pass\n"})
    (root / "pkg" / "again").symlink_to(root / "pkg", target_is_directory=True)
    result = ProjectScanner().scan(ScanOptions(root))
    assert list(result.records) == ["pkg/a.py"]


def test_file_deleted_during_the_scan_is_an_error_entry(tree, monkeypatch) -> None:
    root = tree({"a.py": "x = 1\n", "gone.py": "y = 2\n"})

    def discover_then_delete(*args, **kwargs) -> Discovery:
        found = discover(*args, **kwargs)
        (root / "gone.py").unlink()  # deleted after discovery saw it, before parsing
        return found

    monkeypatch.setattr(scanner_module, "discover", discover_then_delete)
    result = ProjectScanner().scan(ScanOptions(root, use_cache=False))
    assert list(result.records) == ["a.py"]
    assert result.errors == {"gone.py": "file vanished during the scan"}


def test_found_file_records_are_sorted_by_path(tree) -> None:
    root = tree({"b.py": "", "a/z.py": "", "a/b.go": "package a\n"})
    assert [f.path for f in discover(root).files] == ["a/b.go", "a/z.py", "b.py"]
    assert isinstance(discover(root).files[0], FoundFile)


@pytest.mark.parametrize("workers", [1, 2])
def test_empty_tree_scans_to_nothing(tmp_path: Path, workers: int) -> None:
    result = ProjectScanner().scan(ScanOptions(tmp_path, workers=workers))
    assert result.records == {} and result.errors == {}

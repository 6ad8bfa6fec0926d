"""read_manifest: a project's name/version/description/author from its own manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmstruct.engine.manifest import read_manifest


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


def test_pep621_static_fields(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[project]\nname = "shop"\nversion = "1.2.3"\ndescription = "A shop."\n'
        'authors = [{ name = "Ada", email = "ada@example.org" }]\n')})  # fmt: skip
    info = read_manifest(tmp_path)
    assert (info["name"], info["version"], info["description"], info["author"]) == (
        "shop", "1.2.3", "A shop.", "Ada")  # fmt: skip


@pytest.mark.parametrize("layout", ["pkg/__init__.py", "src/pkg/__init__.py", "pkg.py"])
def test_dynamic_version_read_from_the_attr_without_importing(tmp_path: Path, layout: str) -> None:
    # The module would fail if imported: the value must come from its source text.
    write(tmp_path, {
        "pyproject.toml": ('[project]\nname = "pkg"\ndynamic = ["version"]\n'
                           '[tool.setuptools.dynamic]\nversion = { attr = "pkg.__version__" }\n'),
        layout: 'raise SystemExit("imported!")\n__version__ = "4.5.6"\n',
    })  # fmt: skip
    assert read_manifest(tmp_path)["version"] == "4.5.6"


def test_dynamic_version_from_a_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": ('[project]\nname = "pkg"\ndynamic = ["version"]\n'
                           '[tool.setuptools.dynamic]\nversion = { file = "VERSION" }\n'),
        "VERSION": "7.8.9\n",
    })  # fmt: skip
    assert read_manifest(tmp_path)["version"] == "7.8.9"


def test_dynamic_version_that_is_not_a_literal_is_absent(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": ('[project]\nname = "pkg"\ndynamic = ["version"]\n'
                           '[tool.setuptools.dynamic]\nversion = { attr = "pkg.VERSION" }\n'),
        "pkg/__init__.py": "VERSION = compute()\n",
    })  # fmt: skip
    assert read_manifest(tmp_path)["version"] is None


def test_poetry_project(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[tool.poetry]\nname = "poem"\nversion = "0.3.0"\n'
        'authors = ["Grace Hopper <grace@example.org>"]\n')})  # fmt: skip
    info = read_manifest(tmp_path)
    assert (info["name"], info["version"], info["author"]) == ("poem", "0.3.0", "Grace Hopper")


def test_package_json_and_no_manifest(tmp_path: Path) -> None:
    write(
        tmp_path / "js",
        {"package.json": '{"name": "web", "version": "2.0.0", "author": {"name": "Linus"}}'},
    )
    assert read_manifest(tmp_path / "js")["author"] == "Linus"
    assert read_manifest(tmp_path / "js")["version"] == "2.0.0"
    assert read_manifest(tmp_path) == {}


def test_broken_manifest_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[project\nname=", "package.json": '{"name": "web"}'})
    assert read_manifest(tmp_path)["name"] == "web"


def test_our_own_checkout_reports_its_real_version() -> None:
    import llmstruct

    checkout = Path(__file__).resolve().parents[2]
    assert read_manifest(checkout)["version"] == llmstruct.__version__

"""A project's own name, version, description and author, from its manifest.

``read_manifest(root)`` looks at ``pyproject.toml`` (PEP 621 ``[project]``, then
Poetry's ``[tool.poetry]``) and then ``package.json``. A PEP 621 version declared
``dynamic`` is looked up where setuptools would find it, without running any of
the project's code: ``[tool.setuptools.dynamic] version = {attr = "pkg.__version__"}``
is read as a string literal from the module's source (``ast``, never imported: the
project is not ours to execute), ``version = {file = "VERSION"}`` from that file.
Anything missing or malformed is simply absent from the answer.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import orjson

__all__ = ["read_manifest"]


def read_manifest(root: Path) -> dict[str, Any]:
    """``name``/``version``/``description``/``author`` of the project at ``root`` (any may be
    missing)."""
    pyproject = _pyproject(root)
    if pyproject is not None:
        return pyproject
    try:
        package = orjson.loads((root / "package.json").read_bytes())
        author = package.get("author")
        return {**package, "author": author.get("name") if isinstance(author, dict) else author}
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return {}


def _pyproject(root: Path) -> dict[str, Any] | None:
    try:
        document = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    tool = document.get("tool") if isinstance(document.get("tool"), dict) else {}
    project = document.get("project")
    if not isinstance(project, dict):
        project = tool.get("poetry") if isinstance(tool.get("poetry"), dict) else {}
    fields: dict[str, Any] = dict(project)
    authors = project.get("authors")
    first = authors[0] if isinstance(authors, list) and authors else None
    # PEP 621 authors are tables; Poetry's are "Name <email>" strings.
    if isinstance(first, dict):
        fields["author"] = first.get("name")
    elif isinstance(first, str):
        fields["author"] = first.split("<")[0].strip() or None
    else:
        fields["author"] = None
    dynamic = project.get("dynamic")
    if "version" not in project and isinstance(dynamic, list) and "version" in dynamic:
        setuptools = tool.get("setuptools") if isinstance(tool.get("setuptools"), dict) else {}
        declared = (setuptools.get("dynamic") or {}).get("version")
        fields["version"] = _dynamic_version(root, declared)
    return fields


def _dynamic_version(root: Path, declared: Any) -> str | None:
    if not isinstance(declared, dict):
        return None
    if isinstance(declared.get("file"), str):
        try:
            return (root / declared["file"]).read_text("utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            return None
    attr = declared.get("attr")
    if not isinstance(attr, str) or "." not in attr:
        return None
    module, _, name = attr.rpartition(".")
    return _literal_in_module(root, module, name)


def _literal_in_module(root: Path, module: str, name: str) -> str | None:
    """The string assigned to ``name`` at the top level of ``module``'s source, if literal."""
    relative = Path(*module.split("."))
    for base in (root, root / "src"):
        for candidate in (base / relative / "__init__.py", base / relative.with_suffix(".py")):
            try:
                tree = ast.parse(candidate.read_bytes())
            except (OSError, SyntaxError, ValueError):
                continue
            for node in tree.body:
                if (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    return node.value.value
            return None
    return None

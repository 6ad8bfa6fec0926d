"""Where the real third-party code the corpus tests read lives on this machine.

The Python standard library comes with the interpreter. The others come from
Debian source packages that ``.ci/run`` installs. Outside CI a missing package
skips its tests (with the package to install named); under CI (``CI=true``)
it fails them, so a broken install step cannot pass as green.
"""

from __future__ import annotations

import os
import sysconfig
import zipfile
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

PYTHON_STDLIB = Path(sysconfig.get_paths()["stdlib"])
GO_SRC = Path("/usr/share/go-1.19/src")
RUST_SRC = Path("/usr/src/rustc-1.63.0/library")
JAVA_SRC_ZIP = Path("/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip")
TYPESCRIPT_LIB = Path("/usr/share/nodejs/typescript/lib")
EXPRESS_LIB = Path("/usr/share/nodejs/express/lib")
LODASH = Path("/usr/share/nodejs/lodash")


def require(path: Path, package: str) -> Path:
    """``path`` if installed; else skip (fail under CI) naming the Debian package."""
    if path.exists():
        return path
    message = f"{path} missing: install the Debian package {package} (.ci/run does)"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def java_sources(target: Path, prefixes: tuple[str, ...]) -> Path:
    """Extract the JDK sources under ``prefixes`` (e.g. ``java.base/java/util/``)."""
    require(JAVA_SRC_ZIP, "openjdk-17-source")
    with zipfile.ZipFile(JAVA_SRC_ZIP) as archive:
        for name in archive.namelist():
            if name.endswith(".java") and name.startswith(prefixes):
                archive.extract(name, target)
    return target


def definition_line(path: Path, prefix: str) -> int:
    """1-based line of the first line starting (after indentation) with ``prefix``.

    An oracle independent of tree-sitter: the tests compare the parser's line
    numbers with where the text really is in the installed file.
    """
    for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1):
        if line.lstrip().startswith(prefix):
            return number
    raise AssertionError(f"{prefix!r} not found in {path}")

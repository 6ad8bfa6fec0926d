"""Which sources a compiled twin was built from: a digest recorded at build time.

A compiled twin left over from an earlier build keeps running after its source
changed (the selectors load any ``_<name>_c`` they find), so an edit to a pure twin
that is also the compiled one's source (pure Python mode) would go untested until
someone rebuilt. ``setup.py`` writes ``_<name>_c.sources`` next to each module it
compiles; ``tests/_ext/test_twins_loaded.py`` compares it with the sources as they
are now. Standard library only: setup.py loads this file before llmstruct exists.
"""

from __future__ import annotations

import hashlib
import json
import os

__all__ = ["source_files", "digest", "record_path", "write_record", "read_record"]


def source_files(ext_dir: str, module: str) -> list[str]:
    """The files ``module`` (``_<name>_c``) is compiled from: its Cython source or its
    pure twin, its own declarations, and every .pxd it could cimport."""
    stem = module[: -len("_c")]
    names = sorted(name for name in os.listdir(ext_dir) if name.endswith(".pxd"))
    own = f"{module}.pyx"
    names.append(own if os.path.exists(os.path.join(ext_dir, own)) else f"{stem}_py.py")
    return names


def digest(ext_dir: str, module: str) -> str:
    sha = hashlib.sha256()
    for name in source_files(ext_dir, module):
        with open(os.path.join(ext_dir, name), "rb") as source:
            sha.update(name.encode() + b"\0" + source.read() + b"\0")
    return sha.hexdigest()


def record_path(compiled_file: str, module: str) -> str:
    return os.path.join(os.path.dirname(compiled_file), f"{module}.sources")


def write_record(compiled_file: str, ext_dir: str, module: str) -> None:
    with open(record_path(compiled_file, module), "w", encoding="utf-8") as out:
        json.dump({"module": module, "sha256": digest(ext_dir, module)}, out)


def read_record(compiled_file: str, module: str) -> str | None:
    """The digest recorded beside ``compiled_file``, or None if there is none."""
    try:
        with open(record_path(compiled_file, module), encoding="utf-8") as found:
            return json.load(found).get("sha256")
    except (OSError, ValueError):
        return None

"""Reading and writing struct.json.

Writes are atomic (see ``atomic``): a reader never sees half a file, and a crash
mid-write leaves the previous struct.json intact. Reads check the shape that
every consumer relies on and raise ``StructFileError`` with a message fit for the
user for anything else (missing file, invalid JSON, not a v2.x struct).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from llmstruct.store.atomic import atomic_write_bytes

DEFAULT_NAME = "struct.json"


class StructFileError(ValueError):
    """struct.json cannot be read or is not a struct.json."""


def dumps(struct: dict[str, Any]) -> bytes:
    # Compact: an indented struct.json of the standard library is 84 MB instead of
    # 45 MB and twice as slow to write; ``jq .`` pretty-prints it for reading.
    return orjson.dumps(struct) + b"\n"


def write_struct(path: Path | str, struct: dict[str, Any]) -> None:
    """Write ``struct`` to ``path`` atomically; OSError propagates to the caller."""
    atomic_write_bytes(Path(path), dumps(struct))


def read_struct(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StructFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise StructFileError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        struct = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StructFileError(f"{path}: not valid JSON ({exc})") from None
    problem = shape_problem(struct)
    if problem:
        raise StructFileError(f"{path}: not a struct.json v2.x file ({problem})")
    return struct


def shape_problem(struct: Any) -> str | None:
    """What makes ``struct`` unusable as struct.json, or None."""
    if not isinstance(struct, dict):
        return "top level is not an object"
    for key, kind in (("metadata", dict), ("toc", list), ("modules", list)):
        if not isinstance(struct.get(key), kind):
            return f"'{key}' missing or not an {'object' if kind is dict else 'array'}"
    version = struct["metadata"].get("schema_version")
    if not isinstance(version, str) or not version.startswith("2."):
        return f"schema_version {version!r} is not 2.x"
    for index, module in enumerate(struct["modules"]):
        if not isinstance(module, dict) or not isinstance(module.get("path"), str):
            return f"modules[{index}] has no path"
    return None

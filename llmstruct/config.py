"""Configuration: defaults < ``llmstruct.toml`` in the project root < flags.

Only the ``[scan]`` table exists so far. Unknown keys and wrong types are errors
(``ConfigError``) naming the file and key, reported in one line at start-up:
a typo in a config file must never be silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmstruct.engine.discovery import DEFAULT_MAX_FILE_SIZE

CONFIG_NAME = "llmstruct.toml"


class ConfigError(ValueError):
    pass


@dataclass(slots=True)
class ScanConfig:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    secret_patterns: list[str] = field(default_factory=list)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    output: str | None = None


_SCAN_KEYS: dict[str, type] = {
    "include": list,
    "exclude": list,
    "secret_patterns": list,
    "max_file_size": int,
    "output": str,
}


def load_scan_config(root: Path) -> ScanConfig:
    """Read ``root/llmstruct.toml`` if present."""
    path = root / CONFIG_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ScanConfig()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    table = document.get("scan", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [scan] must be a table")
    return ScanConfig(**{key: _checked(path, key, value) for key, value in table.items()})


def _checked(path: Path, key: str, value: Any) -> Any:
    expected = _SCAN_KEYS.get(key)
    if expected is None:
        known = ", ".join(sorted(_SCAN_KEYS))
        raise ConfigError(f"{path}: unknown key scan.{key} (known: {known})")
    if not isinstance(value, expected) or isinstance(value, bool):
        raise ConfigError(f"{path}: scan.{key} must be a {expected.__name__}")
    if expected is list and not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: scan.{key} must be a list of strings")
    if key == "max_file_size" and value <= 0:
        raise ConfigError(f"{path}: scan.max_file_size must be positive")
    return value

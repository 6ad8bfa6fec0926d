"""Random operation sequences give each LRUCache twin the same results as a naive model.

Both twins are checked against the same model, so they also agree with each
other. After every step the stats must match and bytes stay under the cap.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests._ext.conftest import FakeClock


class ModelCache:
    """LRU semantics written the obvious O(n) way: a list, least recent first."""

    def __init__(self, max_bytes, default_ttl, clock):
        self.max_bytes, self.default_ttl, self.clock = max_bytes, default_ttl, clock
        self.items = []  # [key, value, size, expires_at or None]
        self.counts = dict.fromkeys(("hits", "misses", "evictions", "expirations"), 0)

    def _pop(self, key):
        for i, item in enumerate(self.items):
            if item[0] == key:
                return self.items.pop(i)
        return None

    def _expired(self, item):
        return item[3] is not None and self.clock() >= item[3]

    def get(self, key):
        item = self._pop(key)
        if item is None or self._expired(item):
            self.counts["misses"] += 1
            self.counts["expirations"] += item is not None
            return None
        self.items.append(item)
        self.counts["hits"] += 1
        return item[1]

    def set(self, key, value, size, ttl):
        self._pop(key)
        if size > self.max_bytes:
            return False
        ttl = self.default_ttl if ttl is None else ttl
        while sum(item[2] for item in self.items) + size > self.max_bytes:
            oldest = self.items.pop(0)
            self.counts["expirations" if self._expired(oldest) else "evictions"] += 1
        expires_at = None if ttl is None else self.clock() + ttl
        self.items.append([key, value, size, expires_at])
        return True

    def delete(self, key):
        item = self._pop(key)
        if item is not None and self._expired(item):
            self.counts["expirations"] += 1
            return False
        return item is not None

    def contains(self, key):
        return any(item[0] == key and not self._expired(item) for item in self.items)

    def clear(self):
        self.items = []

    def stats(self):
        size = sum(item[2] for item in self.items)
        return {"entries": len(self.items), "bytes": size, "max_bytes": self.max_bytes,
                **self.counts}  # fmt: skip


keys = st.sampled_from("abcdef")
# TTLs a multiple of the clock steps, so entries are often looked at exactly as they expire.
ttls = st.none() | st.sampled_from([1, 2, 3])
# Mostly small sizes, so several entries fit and eviction order matters; some
# large ones, up to past the cap, to evict many at once or be refused.
sizes = st.integers(0, 15) | st.integers(0, 60)
ARGS = {
    "get": st.tuples(keys),
    "set": st.tuples(keys, sizes, ttls),
    "delete": st.tuples(keys),
    "contains": st.tuples(keys),
    "advance": st.tuples(st.sampled_from([0.5, 1])),
    "clear": st.tuples(),
}
# Weighted so gets and sets dominate and a clear is rare, as in real use.
KINDS = (
    ["get"] * 4 + ["set"] * 4 + ["delete", "contains", "contains", "advance", "advance", "clear"]
)
operations = st.lists(
    st.sampled_from(KINDS).flatmap(lambda kind: ARGS[kind].map(lambda args: (kind, *args))),
    min_size=10,
    max_size=100,
)


def apply(cache, op, value):
    """Run one non-clock operation on a cache twin or on the model."""
    name, *args = op
    if name == "get":
        return cache.get(args[0])
    if name == "set":
        key, size, ttl = args
        return cache.set(key, value, size, ttl)
    if name == "delete":
        return cache.delete(args[0])
    if name == "contains":
        return cache.contains(args[0]) if isinstance(cache, ModelCache) else args[0] in cache
    if name == "clear":
        return cache.clear()
    raise AssertionError(name)


@settings(max_examples=300, deadline=None)
@given(
    max_bytes=st.integers(1, 50),  # sizes reach past it, to be refused
    default_ttl=st.none() | st.sampled_from([1, 2.5]),
    ops=operations,
)
def test_twin_behaves_like_the_model(lru_module, max_bytes, default_ttl, ops):
    clock = FakeClock()
    cache = lru_module.LRUCache(max_bytes, default_ttl=default_ttl, clock=clock)
    model = ModelCache(max_bytes, default_ttl, clock)
    for step, op in enumerate(ops):
        if op[0] == "advance":
            clock.advance(op[1])
            continue
        value = f"value-{step}"
        assert apply(cache, op, value) == apply(model, op, value), (step, op)
        assert cache.stats() == model.stats(), (step, op)
        assert len(cache) == len(model.items)
        assert cache.current_bytes <= cache.max_bytes

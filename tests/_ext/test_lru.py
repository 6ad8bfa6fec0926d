"""Behaviour of LRUCache, run over both twins by the ``lru_module`` fixture."""

from __future__ import annotations

import gc
import math
import weakref

import pytest


@pytest.fixture
def LRU(lru_module):  # noqa: N802 - stands for the class
    return lru_module.LRUCache


class Blob:
    """A value that can be watched with a weakref."""


def test_get_returns_stored_value_and_counts_a_hit(LRU):
    cache = LRU(100)
    assert cache.set("a", "A", 10) is True
    assert cache.get("a") == "A"
    assert (cache.hits, cache.misses) == (1, 0)


def test_missing_key_returns_default_and_counts_a_miss(LRU):
    cache = LRU(100)
    assert cache.get("nope") is None
    assert cache.get("nope", "dflt") == "dflt"
    assert (cache.hits, cache.misses) == (0, 2)


def test_replacing_a_key_updates_bytes_accounting(LRU):
    cache = LRU(100)
    cache.set("a", "A", 30)
    cache.set("b", "B", 20)
    cache.set("a", "A2", 5)
    assert (len(cache), cache.current_bytes) == (2, 25)
    assert cache.get("a") == "A2"
    assert cache.evictions == 0


def test_evicts_least_recently_used_first(LRU):
    cache = LRU(30)
    for key in "abc":
        cache.set(key, key.upper(), 10)
    cache.set("d", "D", 10)
    assert "a" not in cache
    assert all(key in cache for key in "bcd")
    assert (cache.evictions, cache.current_bytes) == (1, 30)


def test_get_makes_an_entry_most_recently_used(LRU):
    cache = LRU(30)
    for key in "abc":
        cache.set(key, key, 10)
    cache.get("a")
    cache.get("b")
    cache.set("d", "d", 10)  # c is now the least recently used
    assert "c" not in cache
    cache.set("e", "e", 10)
    assert "a" not in cache
    assert sorted(key for key in "abcde" if key in cache) == ["b", "d", "e"]


def test_replacing_a_key_makes_it_most_recently_used(LRU):
    cache = LRU(30)
    for key in "abc":
        cache.set(key, key, 10)
    cache.set("a", "a2", 10)
    cache.set("d", "d", 10)
    assert "b" not in cache
    assert "a" in cache


def test_evicts_as_many_entries_as_the_new_one_needs(LRU):
    cache = LRU(100)
    for key in "abcd":
        cache.set(key, key, 25)
    cache.set("big", "B", 60)
    assert [key in cache for key in "abcd"] == [False, False, False, True]
    assert (cache.evictions, cache.current_bytes) == (3, 85)


def test_entry_exactly_filling_the_cap_is_stored(LRU):
    cache = LRU(50)
    cache.set("a", "a", 1)
    assert cache.set("full", "F", 50) is True
    assert (len(cache), cache.current_bytes, cache.evictions) == (1, 50, 1)


def test_zero_size_entries_are_stored_and_never_force_evictions(LRU):
    cache = LRU(10)
    cache.set("a", "a", 10)
    assert cache.set("free", "f", 0) is True
    assert ("a" in cache, "free" in cache, cache.evictions) == (True, True, 0)


def test_refuses_entry_larger_than_cap(LRU):
    cache = LRU(50)
    cache.set("a", "a", 20)
    assert cache.set("huge", "H", 51) is False
    assert "huge" not in cache
    assert (len(cache), cache.current_bytes, cache.evictions) == (1, 20, 0)


def test_refused_replacement_removes_the_old_value(LRU):
    cache = LRU(50)
    cache.set("a", "old", 20)
    assert cache.set("a", "new", 51) is False
    assert cache.get("a") is None
    assert (len(cache), cache.current_bytes, cache.evictions) == (0, 0, 0)


def test_expired_entry_is_a_miss(LRU, clock):
    cache = LRU(100, default_ttl=10, clock=clock)
    cache.set("a", "A", 40)
    clock.advance(10)
    assert cache.get("a", "gone") == "gone"
    assert (cache.hits, cache.misses, cache.expirations) == (0, 1, 1)
    assert (len(cache), cache.current_bytes) == (0, 0)


def test_entry_lives_until_its_ttl_has_elapsed(LRU, clock):
    cache = LRU(100, clock=clock)
    cache.set("a", "A", 1, ttl=2.0)
    clock.advance(1.5)
    assert cache.get("a") == "A"  # a hit does not extend the TTL
    clock.advance(0.5)
    assert cache.get("a") is None


def test_per_entry_ttl_overrides_the_default(LRU, clock):
    cache = LRU(100, default_ttl=5, clock=clock)
    cache.set("short", 1, 1, ttl=1)
    cache.set("long", 2, 1, ttl=60)
    cache.set("default", 3, 1)
    clock.advance(5)
    assert [cache.get(key) for key in ("short", "long", "default")] == [None, 2, None]


def test_without_ttl_entries_never_expire_and_the_clock_is_never_read(LRU):
    reads = []
    cache = LRU(100, clock=lambda: reads.append(1) or 0.0)
    cache.set("a", "A", 60)
    cache.set("b", "B", 60)  # evicts a
    assert (cache.get("b"), "b" in cache, cache.delete("b")) == ("B", True, True)
    assert reads == []


def test_contains_respects_expiry_without_touching_recency_or_counters(LRU, clock):
    cache = LRU(20, clock=clock)
    cache.set("a", "A", 10, ttl=5)
    cache.set("b", "B", 10)
    assert "a" in cache  # does not make "a" most recent...
    cache.set("c", "C", 10)
    assert "a" not in cache  # ...so it was the one evicted
    cache.set("d", "D", 10, ttl=5)
    clock.advance(5)
    assert "d" not in cache
    assert len(cache) == 2  # expired "d" is still stored until accessed
    assert cache.stats()["hits"] + cache.misses + cache.expirations == 0


def test_set_counts_expired_lru_entries_as_expirations_not_evictions(LRU, clock):
    cache = LRU(30, clock=clock)
    cache.set("old", "o", 10, ttl=1)
    cache.set("live", "l", 10)
    cache.set("other", "x", 10)
    clock.advance(1)
    cache.set("new", "n", 20)
    assert (cache.expirations, cache.evictions) == (1, 1)
    assert ["old" in cache, "live" in cache, "other" in cache] == [False, False, True]


def test_delete_removes_an_entry(LRU):
    cache = LRU(100)
    cache.set("a", "A", 10)
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert (len(cache), cache.current_bytes, cache.get("a")) == (0, 0, None)


def test_delete_of_an_expired_entry_returns_false_and_counts_an_expiration(LRU, clock):
    cache = LRU(100, default_ttl=1, clock=clock)
    cache.set("a", "A", 10)
    clock.advance(1)
    assert cache.delete("a") is False
    assert (len(cache), cache.current_bytes, cache.expirations) == (0, 0, 1)


def test_clear_keeps_counters_and_zeroes_bytes(LRU):
    cache = LRU(20)
    for key in "abc":
        cache.set(key, key, 10)
    cache.get("c")
    cache.get("a")
    cache.clear()
    assert cache.stats() == {
        "entries": 0, "bytes": 0, "max_bytes": 20,
        "hits": 1, "misses": 1, "evictions": 1, "expirations": 0,
    }  # fmt: skip
    cache.set("d", "D", 20)
    cache.set("e", "E", 20)
    assert (cache.get("e"), "d" in cache, cache.evictions) == ("E", False, 2)


def test_stats_reports_size_and_counters(LRU, clock):
    cache = LRU(25, default_ttl=1, clock=clock)
    cache.set("a", "A", 10)
    cache.set("b", "B", 10)
    cache.get("a")
    cache.set("c", "C", 10)  # evicts b
    clock.advance(1)
    cache.get("a")  # expired
    assert cache.stats() == {
        "entries": 1, "bytes": 10, "max_bytes": 25,
        "hits": 1, "misses": 1, "evictions": 1, "expirations": 1,
    }  # fmt: skip
    assert cache.max_bytes == 25


def test_default_clock_is_monotonic_time(LRU):
    cache = LRU(100, default_ttl=3600)
    cache.set("a", "A", 10)
    assert cache.get("a") == "A"


@pytest.mark.parametrize("max_bytes", [0, -1])
def test_rejects_non_positive_max_bytes(LRU, max_bytes):
    with pytest.raises(ValueError, match="max_bytes"):
        LRU(max_bytes)


@pytest.mark.parametrize("ttl", [0, -1, -0.5, math.nan])
def test_rejects_non_positive_ttl(LRU, ttl):
    with pytest.raises(ValueError, match="default_ttl"):
        LRU(100, default_ttl=ttl)
    cache = LRU(100)
    with pytest.raises(ValueError, match="ttl"):
        cache.set("a", "A", 1, ttl=ttl)
    assert len(cache) == 0


def test_rejects_negative_size(LRU):
    cache = LRU(100)
    with pytest.raises(ValueError, match="size"):
        cache.set("a", "A", -1)
    assert len(cache) == 0


@pytest.mark.parametrize("bad", [1.5, "10", None])
def test_rejects_non_integer_sizes(LRU, bad):
    with pytest.raises(TypeError):
        LRU(100).set("a", "A", bad)
    with pytest.raises(TypeError):
        LRU(bad)


def test_rejects_sizes_beyond_a_c_ssize_t(LRU):
    with pytest.raises(OverflowError):
        LRU(100).set("a", "A", 2**63)
    with pytest.raises(OverflowError):
        LRU(2**63)


def test_rejects_unhashable_keys(LRU):
    cache = LRU(100)
    for call in (lambda: cache.get([]), lambda: cache.set([], 1, 1), lambda: [] in cache):
        with pytest.raises(TypeError):
            call()


def test_releases_values_when_evicted_replaced_deleted_or_cleared(LRU):
    cache = LRU(10)
    blobs = [Blob() for _ in range(5)]
    refs = [weakref.ref(blob) for blob in blobs]
    for key, blob in zip("abcde", blobs, strict=True):
        cache.set(key, blob, 5)  # a, b, c evicted in turn
    cache.set("d", "replaced", 5)
    del blobs, blob
    gc.collect()
    assert [ref() is None for ref in refs] == [True, True, True, True, False]
    cache.clear()
    assert refs[4]() is None


def test_finaliser_of_an_evicted_value_may_use_the_cache(LRU):
    cache = LRU(20)
    seen = []

    class Reentrant:
        def __del__(self):
            seen.append((cache.get("b"), cache.current_bytes))
            cache.set("late", "L", 5)

    cache.set("a", Reentrant(), 10)
    cache.set("b", "B", 10)
    cache.set("c", "C", 10)  # evicts a; its finaliser runs once c is stored...
    assert seen == [("B", 20)]
    assert ["b" in cache, "c" in cache, "late" in cache] == [True, False, True]  # ...evicting c
    assert (cache.current_bytes, cache.evictions) == (15, 2)

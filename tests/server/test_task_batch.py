"""CreateBatcher: creates from an event loop, committed in groups, on a real task database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from taskdb import hold_write_lock, refuse_title

from llmstruct.api.models import TaskCreateRequest
from llmstruct.server.task_batch import CreateBatcher
from llmstruct.store.tasks import TaskStore, TaskStoreError


class CountingStore(TaskStore):
    """The real store, counting the thread calls the batcher makes."""

    calls: list[int]

    def create_many(self, requests, **options):
        self.calls.append(len(requests))
        return super().create_many(requests, **options)


@pytest.fixture
def store(tmp_path: Path):
    with CountingStore(tmp_path / "tasks.db") as store:
        store.calls = []
        yield store


def new(title: str) -> TaskCreateRequest:
    return TaskCreateRequest(title=title)


def test_concurrent_creates_are_all_committed_in_fewer_thread_calls(store) -> None:
    async def main():
        batcher = CreateBatcher(store)
        return await asyncio.gather(*(batcher.create(new(f"t{i}")) for i in range(300)))

    tasks = asyncio.run(main())  # each create's answer: the task's JSON form
    assert [t["title"] for t in tasks] == [f"t{i}" for i in range(300)]
    assert sorted(t.id for t in store.list(limit=1000)) == sorted(t["id"] for t in tasks)
    assert all(store.get(t["id"]).model_dump(mode="json") == t for t in tasks)
    # All 300 were made in one loop iteration: one group, one thread call, one commit
    # (before the commit started at the end of the iteration, the first went alone).
    assert store.calls == [300]


def test_a_refused_row_fails_its_own_create_only(store) -> None:
    store.create(new("schema in place"))
    refuse_title(store.path, "poison")

    async def main():
        batcher = CreateBatcher(store)
        titles = ["a", "poison", "b", "c"]
        return await asyncio.gather(
            *(batcher.create(new(t)) for t in titles), return_exceptions=True
        )

    a, poison, b, c = asyncio.run(main())
    assert isinstance(poison, TaskStoreError) and "poisoned row" in str(poison)
    assert {t.title for t in store.list()} == {"schema in place", "a", "b", "c"}
    assert [a["title"], b["title"], c["title"]] == ["a", "b", "c"]


def test_a_caller_that_goes_away_does_not_cancel_the_commit(store) -> None:
    async def main():
        batcher = CreateBatcher(store)
        leaving = asyncio.ensure_future(batcher.create(new("left early")))
        staying = asyncio.ensure_future(batcher.create(new("stayed")))
        await asyncio.sleep(0)  # both queued
        leaving.cancel()
        stayed = await staying
        while batcher._committing:  # let the group's commit finish
            await asyncio.sleep(0.01)
        return leaving, stayed

    leaving, stayed = asyncio.run(main())
    assert leaving.cancelled()
    assert {t.title for t in store.list()} == {"left early", "stayed"}
    assert store.get(stayed["id"]).model_dump(mode="json") == stayed


def test_a_store_that_cannot_write_fails_every_create_with_a_clear_error(tmp_path) -> None:
    with TaskStore(tmp_path / "tasks.db", busy_timeout=0.2) as store:
        other = hold_write_lock(store.path)  # throughout

        async def main():
            batcher = CreateBatcher(store)
            return await asyncio.gather(
                *(batcher.create(new(f"t{i}")) for i in range(5)), return_exceptions=True
            )

        try:
            outcomes = asyncio.run(main())
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert all(isinstance(o, TaskStoreError) for o in outcomes)
        assert all("held the task database's write lock" in str(o) for o in outcomes)
        assert store.list() == []


def test_creates_after_the_executor_is_shut_down_fail_and_do_not_hang(store) -> None:
    # A server stopping shuts its default executor down: a create then fails at once.
    async def main():
        loop = asyncio.get_running_loop()
        await loop.shutdown_default_executor()
        batcher = CreateBatcher(store)
        first = await asyncio.gather(batcher.create(new("late")), return_exceptions=True)
        second = await asyncio.gather(batcher.create(new("later")), return_exceptions=True)
        return first + second

    outcomes = asyncio.run(main())
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert store.list() == []

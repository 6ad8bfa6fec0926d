"""Task creates from the event loop, committed in groups by one thread call each.

Every create commits with an fsync (``synchronous=FULL``: the task store's module
docstring). One executor thread per create would bound the creates in flight by
the pool's size (six threads on two cores) and pay a thread hop each; here the loop
queues each create, and one thread call at a time commits whatever queued while
the previous one was syncing (``TaskStore.create_many``: one transaction, one
fsync). Each caller still gets its answer only once a COMMIT holds its task.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llmstruct.api.models import TaskCreateRequest, TaskResponse
from llmstruct.store.tasks import TaskStore

__all__ = ["CreateBatcher"]


class CreateBatcher:
    """``await batcher.create(request)``: ``store.create(request)``, grouped with the
    creates that arrive while a commit is in progress. Use from one event loop."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self._waiting: list[tuple[TaskCreateRequest, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None  # referenced: tasks are weak

    async def create(self, request: TaskCreateRequest) -> TaskResponse:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((request, future))
        if self._committer is None:
            self._committer = loop.create_task(self._commit_waiting())
        # Shielded: a client that goes away does not cancel the commit its row is in.
        return await asyncio.shield(future)

    async def _commit_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    outcomes = await loop.run_in_executor(
                        None, self.store.create_many, [request for request, _ in group]
                    )
                except Exception as exc:  # the whole call failed: every create with it
                    outcomes = [exc] * len(group)
                except BaseException:
                    self._waiting[:0] = group  # cancelled (shutdown): nobody waits forever
                    raise
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._committer = None
            for _, future in self._waiting:
                future.cancel()
            self._waiting = []

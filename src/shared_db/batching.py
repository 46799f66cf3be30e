"""Automatic batching: point reads made on the ``Database`` at the same moment share one statement.

When a service handles many requests at once, their ``users.get``, ``get_by_email``,
``payments.get``, ``profiles.get`` and ``users.eager`` calls arrive in the same turn of the event
loop. The first such call of a kind waits one turn (or, while a statement of its kind is out,
until that one answers); the calls of the same kind made meanwhile join it, and one statement
(``= ANY(%(keys)s)``) answers them all, each caller getting exactly
the row its own call would have read (the same as DataLoader does, and Prisma for
``findUnique``). A call alone in its turn runs its own single-key statement, as without batching.

What does not change:

* results: each key's row is picked out by the key the row carries, compared as the database
  compares it (the statement's own ``=``);
* errors: input is checked per call before it joins, so a bad argument fails only its call; a
  failure of the shared statement (the server gone, say) is the failure each call would have met;
* isolation: only reads made on the ``Database`` itself are batched, never those inside a
  transaction, which run on the transaction's connection as before. Each batched call sees a
  state of the database that existed while it was waiting, as an unbatched read does.

A caller cancelled while it waits leaves the others served: the shared statement runs in a task
of its own, which no single caller's cancellation stops.

Observed, the shared statement belongs to every caller: it is drawn as a span in each caller's
trace (``shared_db.batch.callers`` says how many it served), counts once in each unit of work
around any of them, and its log line carries every caller's trace id (``sql.BATCH_CALLERS``).
Metrics count it once, as the one statement it is.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared_db.sql import BATCH_CALLERS

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_KEYS = 500
"""Keys per shared statement; a larger crowd is answered by several."""


@dataclass(frozen=True, eq=False)
class Lookup(Generic[K, V]):
    """One kind of point read: by one key, and by many (the found rows by their key)."""

    name: str
    one: Callable[[Any, K], Awaitable[V | None]]
    many: Callable[[Any, list[K]], Awaitable[Mapping[K, V]]]


class _Kind:
    """The state of one kind of lookup: the calls waiting to leave, and the statement out."""

    __slots__ = ("callers", "flying", "waiting")

    def __init__(self) -> None:
        self.waiting: dict[Any, list[asyncio.Future[Any]]] | None = None
        self.callers: list[contextvars.Context] = []
        """The contexts of the calls waiting, for what observes them (``BATCH_CALLERS``)."""
        self.flying: asyncio.Future[Any] | None = None


class Batcher:
    """The calls waiting to share a statement, per kind of lookup, for one ``Database``."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._kinds: dict[Lookup[Any, Any], _Kind] = {}

    async def load(self, lookup: Lookup[K, V], key: K) -> V | None:
        kind = self._kinds.get(lookup) or self._kinds.setdefault(lookup, _Kind())
        waiting = kind.waiting
        if waiting is not None and (key in waiting or len(waiting) < MAX_KEYS):
            joined: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
            waiting.setdefault(key, []).append(joined)
            kind.callers.append(contextvars.copy_context())
            return await joined
        # The first caller waits on a future of its own like those who join: waiting on the
        # shared task instead woke it two loop turns after them, too late for the next batch,
        # which it then left short by one (8 callers made batches of 7, 8 and 1).
        mine: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        batch: dict[Any, list[asyncio.Future[Any]]] = {key: [mine]}
        callers = kind.callers = [contextvars.copy_context()]
        kind.waiting = batch
        task = None
        try:
            # While a statement of this kind is out, the calls made meanwhile gather for the
            # next one, which leaves when it answers: under load, batches grow instead of
            # splitting the crowd over many small statements. Otherwise wait one loop turn.
            if kind.flying is not None and not kind.flying.done():
                await asyncio.wait([kind.flying])
            else:
                await asyncio.sleep(0)
        except BaseException:
            mine.cancel()  # leaving (cancelled): nobody will read this call's result or error
            raise
        finally:
            if kind.waiting is batch:
                kind.waiting = None
            if len(batch) > 1 or len(batch[key]) > 1:  # served even if this call was cancelled
                task = asyncio.get_running_loop().create_task(self._run(lookup, batch,
                                                                        callers))
                task.add_done_callback(_consume)
                kind.flying = task
        if task is None:
            flying = kind.flying = asyncio.get_running_loop().create_future()
            try:
                return await lookup.one(self._source, key)
            finally:
                flying.set_result(None)
        return await mine

    async def _run(self, lookup: Lookup[K, V], waiting: dict[K, list[asyncio.Future[Any]]],
                   callers: list[contextvars.Context]) -> Mapping[K, V]:
        BATCH_CALLERS.set(tuple(callers))  # the task's own context: nobody else sees it
        try:
            found = await lookup.many(self._source, list(waiting))
        except BaseException as exc:
            for futures in waiting.values():
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            raise
        for key, futures in waiting.items():
            value = found.get(key)
            for n, future in enumerate(futures):
                if not future.done():
                    # Callers of one key get a row each, as their own statements would give
                    # them: a record's JSON fields are dicts, which one caller may change.
                    future.set_result(value if n == 0 or value is None else copy.deepcopy(value))
        return found


def _consume(task: asyncio.Task[Any]) -> None:
    # Its callers saw the error already; a cancelled first caller never looks at the task.
    if not task.cancelled():
        task.exception()

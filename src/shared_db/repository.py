"""What every repository shares: where its SQL runs, and who is acting.

A repository is bound to a *source*: the ``Database`` (each call borrows a pooled connection;
a write method runs in a transaction of its own) or a ``Transaction`` (every call joins it).
Repositories never commit; the source does. A repository that needs another builds it on its
own source (``AuditRepository(tx)``), so nothing here knows the concrete client.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from shared_db.batching import Batcher, Lookup
from shared_db.context import ActorContext
from shared_db.sql import Executor, Query
from shared_db.typed import check_public_methods

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@runtime_checkable
class Source(Protocol):
    batcher: Batcher | None
    """Merges concurrent point reads (``shared_db.batching``); None inside a transaction."""

    def executor(self, service: str, write: bool = False, primary: bool = False,
                 fresh: bool = False) -> AbstractAsyncContextManager[Executor]: ...

    def actor(self) -> ActorContext: ...

    def same_database(self, a: str, b: str) -> bool: ...

    def unit(self) -> AbstractAsyncContextManager[Source]:
        """A unit of work: a new transaction on the Database, the transaction itself inside
        one."""
        ...


class Repository:
    """Base of the per-service repositories."""

    service: ClassVar[str]

    def __init_subclass__(cls, **kwargs: object) -> None:
        # The validation edge (shared_db.typed): every public method checks its arguments by
        # their annotations, so a method added later is covered by declaring its types.
        super().__init_subclass__(**kwargs)
        check_public_methods(cls)

    def __init__(self, source: Source) -> None:
        self._source = source

    def _read(self) -> AbstractAsyncContextManager[Executor]:
        return self._source.executor(self.service)

    def _fresh(self) -> AbstractAsyncContextManager[Executor]:
        """A read on the primary even where a replica serves the others: a replica lags, and a
        revoked token or a changed password must not be accepted from it."""
        return self._source.executor(self.service, fresh=True)

    def _write(self) -> AbstractAsyncContextManager[Executor]:
        return self._source.executor(self.service, write=True)

    async def _lookup(self, lookup: Lookup[K, V], key: K) -> V | None:
        """A point read, shared with the same reads made meanwhile when outside a
        transaction."""
        batcher = self._source.batcher
        if batcher is None:
            return await lookup.one(self._source, key)
        return await batcher.load(lookup, key)


def point_lookup(service: str, one: Query, many: Query, param: str,
                 record: Callable[..., V], key_of: Callable[[V], K]) -> Lookup[K, V]:
    """A ``Lookup`` from two statements: ``one`` by ``param``, ``many`` by the array ``keys``
    (``= ANY``). ``key_of`` reads back from a row the key the statement matched it on."""
    async def by_one(source: Any, key: K) -> V | None:
        async with source.executor(service) as ex:
            found: V | None = await ex.one(one, {param: key}, record)
            return found

    async def by_many(source: Any, keys: list[K]) -> dict[K, V]:
        async with source.executor(service) as ex:
            return {key_of(row): row for row in await ex.all(many, {"keys": keys}, record)}

    return Lookup(one.name, by_one, by_many)

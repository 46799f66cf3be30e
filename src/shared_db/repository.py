"""What every repository shares: where its SQL runs, and who is acting.

A repository is bound to a *source*: the ``Database`` (each call borrows a pooled connection;
a write method runs in a transaction of its own) or a ``Transaction`` (every call joins it).
Repositories never commit; the source does. A repository that needs another builds it on its
own source (``AuditRepository(tx)``), so nothing here knows the concrete client.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Protocol, runtime_checkable

from shared_db.context import ActorContext
from shared_db.sql import Executor
from shared_db.typed import check_public_methods


@runtime_checkable
class Source(Protocol):
    def executor(self, service: str, write: bool = False, primary: bool = False,
                 ) -> AbstractAsyncContextManager[Executor]: ...

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

    def _write(self) -> AbstractAsyncContextManager[Executor]:
        return self._source.executor(self.service, write=True)

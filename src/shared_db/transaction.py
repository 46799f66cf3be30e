"""``Transaction``: one unit of work across the databases of the topology.

A transaction takes a connection per database on first use and begins there. At the end, one
database commits plainly; several (the per-service topology) commit with two-phase commit
(``shared_db.twophase``), so a unit of work is all-or-nothing whichever databases it touched.

A call inside the block that fails on the server aborts PostgreSQL's transaction, and one cut
off mid-call (cancelled, timed out) may have written what its caller was told it did not: either
leaves the transaction unable to commit, even when the caller caught the error and went on.
Every later use in it is then ``TransactionAbortedError`` (``TransientConflictError`` when the
first failure was one, so retries run the whole transaction again), and so is the block's end,
which rolls everything back. Before this, a COMMIT of an aborted transaction rolled back
silently and the block reported success; in the per-service topology the aborted part's PREPARE
vanished and the others committed.

A transaction is used only inside its ``async with`` block: before the block, after it ends
(committed, rolled back or failed) and when entered a second time, every use of it (a repository
method, ``executor``, ``unit``) is ``ValidationError`` on ``tx`` and sends nothing. Otherwise a
write after the block would report success on a connection nobody ends (or one already back in
the pool) and be lost or committed with someone else's work.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from shared_db import tracing, twophase
from shared_db import validation as check
from shared_db.batching import Batcher
from shared_db.calls import Fresh, Joined, begin, commit, rollback
from shared_db.context import ActorContext, current_actor
from shared_db.errors import (
    InDoubtError,
    TransactionAbortedError,
    TransientConflictError,
    ValidationError,
)
from shared_db.errors_db import translate
from shared_db.observe import detect_n_plus_one
from shared_db.repositories import Repositories
from shared_db.sql import Executor, QueryHooks
from shared_db.url import ConnectionSettings

if TYPE_CHECKING:
    from shared_db.metrics import Metrics


class Pools(Protocol):
    """What a transaction needs of its client: a pool per service, and how to use it."""

    hooks: QueryHooks
    metrics: Metrics | None

    def pool(self, service: str) -> AsyncConnectionPool[Any]: ...

    def same_database(self, a: str, b: str) -> bool: ...

    def connection_settings(self, service: str) -> ConnectionSettings: ...

ISOLATION_LEVELS: tuple[str, ...] = ("read committed", "repeatable read", "serializable")


SET_ISOLATION = {level: "SET TRANSACTION ISOLATION LEVEL " + level.upper()
                 for level in ISOLATION_LEVELS}
# A timeout not given keeps the session's own (from the role, the database or the server): NULL
# here, never "0", which PostgreSQL reads as no limit.
SET_TIMEOUTS = ("SELECT set_config('statement_timeout', coalesce(%(statement_timeout)s::text, "
                "current_setting('statement_timeout')), true), set_config('lock_timeout', "
                "coalesce(%(lock_timeout)s::text, current_setting('lock_timeout')), true)")


def _setup_statements(isolation: str | None, statement_timeout: float | None,
                      lock_timeout: float | None,
                      ) -> list[tuple[str, dict[str, str | None] | None]]:
    """What a transaction runs first: its isolation level, then its timeouts (as parameters)."""
    statements: list[tuple[str, dict[str, str | None] | None]] = []
    if isolation is not None:
        if isolation not in SET_ISOLATION:
            raise ValidationError("isolation", f"must be one of {', '.join(ISOLATION_LEVELS)}")
        statements.append((SET_ISOLATION[isolation], None))
    timeouts: dict[str, str | None] = {}
    for name, seconds in (("statement_timeout", statement_timeout),
                          ("lock_timeout", lock_timeout)):
        if seconds is not None:
            seconds = check.seconds(name, seconds, maximum=86_400)
        # round(): 1 ms or more never becomes "0", which PostgreSQL reads as no limit.
        timeouts[name] = None if seconds is None else str(round(seconds * 1000))
    if statement_timeout is not None or lock_timeout is not None:
        statements.append((SET_TIMEOUTS, timeouts))
    return statements


def _unusable(state: str) -> ValidationError:
    """Why a transaction that is not open cannot be used (``state``: see ``Transaction``)."""
    if state == "new":
        return ValidationError("tx", "the transaction has not started: use it inside "
                               "`async with db.transaction() as tx:`; nothing was sent")
    if state in ("entering", "open"):
        return ValidationError("tx", "the transaction is already open: it cannot be entered "
                               "again; use it as it is, or start a new `db.transaction()`")
    return ValidationError("tx", f"the transaction has already ended ({state}): start a new "
                           "one with `async with db.transaction() as tx:`; nothing was sent")


_CUT_OFF = (asyncio.CancelledError, KeyboardInterrupt, TimeoutError)


def _aborted(first: BaseException) -> TransactionAbortedError | TransientConflictError:
    """The error of a transaction that ``first`` left unable to commit."""
    if isinstance(first, TransactionAbortedError):  # found at the block's end, not by a call
        why = str(first)
    else:
        how = "was cut off" if isinstance(first, _CUT_OFF) else "failed"
        why = (f"a call in it {how} ({type(first).__name__}: {str(first) or 'no message'}), "
               "which leaves it unable to commit even when the error was caught")
    message = f"the transaction was rolled back, nothing in it was committed: {why}"
    found = (TransientConflictError(f"{message}; run it again")
             if isinstance(first, TransientConflictError) else TransactionAbortedError(message))
    found.driver_error = getattr(first, "driver_error", None)  # retries count by cause
    return found


class Transaction(Repositories):
    """One unit of work; per database, a connection is taken on first use and kept to the end.

    Usable only between ``__aenter__`` and the start of ``__aexit__`` (``_state`` "open");
    outside, every use is ``ValidationError`` and sends nothing.
    """

    def __init__(self, db: Pools, isolation: str | None, statement_timeout: float | None,
                 lock_timeout: float | None, actor: ActorContext | None) -> None:
        self.db = db
        self._setup = _setup_statements(isolation, statement_timeout, lock_timeout)
        self._actor = actor
        self._stack = AsyncExitStack()
        self._executors: dict[int, Executor] = {}
        self._services: dict[int, str] = {}
        self._opening: asyncio.Lock | None = None
        self.batcher: Batcher | None = None  # its reads are its own, on its own connection
        self._span: tracing.Opened | None = None
        self._isolation = isolation
        self._failure: BaseException | None = None  # what left it unable to commit
        # "new", "entering", "open" (the only usable one: executor, _executor_for and unit
        # check it), then "its commit failed", "committed" or "rolled back".
        self._state = "new"
        super().__init__(self)

    def actor(self) -> ActorContext:
        return self._actor or current_actor()

    def same_database(self, a: str, b: str) -> bool:
        return self.db.same_database(a, b)

    def unit(self) -> AbstractAsyncContextManager[Transaction]:
        """Write methods called inside the transaction simply join it."""
        if self._state != "open":
            raise _unusable(self._state)
        return nullcontext(self)

    async def __aenter__(self) -> Transaction:
        if self._state != "new":  # entered twice, or again after it ended
            raise _unusable(self._state)
        self._state = "entering"
        await self._stack.__aenter__()
        self._stack.enter_context(detect_n_plus_one())
        if tracing.state.tracer is not None:
            self._span = tracing.Opened("shared_db.transaction", **{
                "shared_db.isolation": self._isolation or "read committed"})
        self._state = "open"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: Any) -> None:
        error: BaseException | None = exc[0] if exc_type is not None else None
        # Closed before COMMIT is sent: nothing joins it from here on, not even a task still
        # running on it, and nothing is sent on its connections once they are back in the pool.
        self._state = "its commit failed"
        try:
            await self._end(exc_type)
            self._state = "committed" if exc_type is None else "rolled back"
        except BaseException as failed:
            error = failed
            if exc_type is not None or self._failure is not None:
                self._state = "rolled back"
            raise
        finally:
            if self._span is not None:
                self._span.close(error)
                self._span = None

    async def _end(self, exc_type: type[BaseException] | None) -> None:
        if exc_type is None and self._failure is None:
            for ex in self._executors.values():
                status = ex.connection.info.transaction_status
                if status == TransactionStatus.ACTIVE:  # a task left running past the block
                    self._failure = TransactionAbortedError(
                        "a statement of a task still running on it when the block ended")
                elif status != TransactionStatus.INTRANS:  # raw SQL on tx.executor() failed
                    self._failure = TransactionAbortedError(
                        "a statement sent through tx.executor() failed or ended it")
        try:
            with translate():
                if exc_type is None and self._failure is None:
                    await self._commit()
                else:
                    await self._rollback()
        finally:
            with translate():
                await self._stack.aclose()  # connections go back to their pools
        if exc_type is None and self._failure is not None:
            raise _aborted(self._failure)

    def _interrupted(self, service: str, error: BaseException) -> None:
        """A call's statement block in the transaction ended with ``error``: the transaction can
        still commit only when PostgreSQL's is intact and the call was not cut off mid-way (a
        ``NotFoundError`` after a good read leaves it intact)."""
        if self._failure is not None or self._state != "open":
            return
        found = self._executors.get(id(self.db.pool(service)))
        # ACTIVE is another task's statement on the shared connection (asyncio.gather in the
        # block): that task's own block, or the block's end, judges it.
        if (isinstance(error, _CUT_OFF) or found is None
                or found.connection.info.transaction_status not in (
                    TransactionStatus.INTRANS, TransactionStatus.ACTIVE)):
            self._failure = error

    def _parts(self) -> list[Executor]:
        # auth last: a new user becomes visible only once the rows written with it are.
        return sorted(self._executors.values(),
                      key=lambda ex: self.db.same_database(self._services[id(ex)], "auth"))

    async def _commit(self) -> None:
        parts = self._parts()
        if len(parts) == 1:
            await commit(parts[0].connection)
        elif parts:
            pools = [self.db.pool(self._services[id(ex)]) for ex in parts]
            metrics = self.db.metrics
            in_doubt = None if metrics is None else metrics.in_doubt.inc
            try:
                await twophase.commit(parts, [partial(Fresh, pool) for pool in pools], in_doubt)
            except InDoubtError:
                if metrics is not None:
                    metrics.two_phase.labels("in_doubt").inc()
                raise
            except BaseException:
                if metrics is not None:
                    metrics.two_phase.labels("rolled_back").inc()
                raise
            if metrics is not None:
                metrics.two_phase.labels("committed").inc()

    async def _rollback(self) -> None:
        for ex in self._executors.values():
            await rollback(ex.connection)

    async def _executor_for(self, service: str) -> Executor:
        if self._state != "open":  # a Joined made in the block and entered after it
            raise _unusable(self._state)
        if self._failure is not None:
            raise _aborted(self._failure)
        try:
            return await self._open(service)
        except BaseException as exc:  # cut off while beginning: a call may be half done
            self._interrupted(service, exc)
            raise

    async def _open(self, service: str) -> Executor:
        pool = self.db.pool(service)
        found = self._executors.get(id(pool))
        if found is not None:
            return found
        if self._opening is None:
            self._opening = asyncio.Lock()
        # Tasks sharing the transaction (asyncio.gather inside it) must share its connection:
        # each opened one of its own, the last replaced the others, and their writes went back
        # to the pool uncommitted, rolled back while every call had reported success.
        async with self._opening:
            found = self._executors.get(id(pool))
            if found is None:
                with translate():
                    conn = await begin(self._stack, pool)
                    if self._setup:
                        async with conn.pipeline():  # one round trip for all of them
                            for statement, params in self._setup:
                                await conn.execute(statement, params)
                prepare = not self.db.connection_settings(service).pgbouncer
                found = self._executors[id(pool)] = Executor(conn, self.db.hooks, prepare)
                self._services[id(found)] = service
        return found

    def executor(self, service: str, write: bool = False, primary: bool = False,
                 fresh: bool = False) -> AbstractAsyncContextManager[Executor]:
        if self._state != "open":
            raise _unusable(self._state)
        return Joined(self, service)  # always the primary: reads see the transaction's writes

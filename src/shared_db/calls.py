"""Borrowing pooled connections: for one read, for one write method, or for a transaction.

Delivery is at most once: a statement that may have reached the server is never sent again.
The only replacement is of a connection that died while idle in the pool (a restart, a crash, a
failover), found before anything is sent on it by one poll of its socket, which costs no round
trip. When one is found dead, the pool is drained: the others opened with it most likely died
with it, so they are closed and reconnected in the background, and the next callers get live
connections instead of failing one after another (unless the server ended that one session
alone, for being idle too long). Plain reads that fail on a lost connection
are run once more on a fresh one; writes never are.

Plain classes rather than generator-based context managers: this is the hottest path of the
package, and ``@asynccontextmanager`` costs measurably more per call.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from typing import Any, Protocol

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import ConnStatus
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared_db.errors import OutcomeUnknownError, TransactionAbortedError
from shared_db.errors_db import first_line, translate, translate_error
from shared_db.sql import Executor, QueryHooks

_POLLIN = select.POLLIN | select.POLLHUP | select.POLLERR


class Watch:
    """What metrics learn of one pool's checkouts: each one's wait in seconds (``observe``),
    and how many callers wait now. psycopg_pool's own ``requests_waiting`` keeps counting
    callers whose wait timed out until a connection comes back."""

    __slots__ = ("observe", "waiting")

    def __init__(self, observe: Callable[[float], None]) -> None:
        self.observe = observe
        self.waiting = 0


WAITS: dict[int, Watch] = {}
"""id(pool) -> its ``Watch`` (metrics); empty: nothing is timed."""


def _quiet(conn: AsyncConnection[Any]) -> bool:
    """Nothing waits to be read on this idle connection (no round trip, one poll).

    An idle session receives nothing unless the server ends it (the FATAL message of a shutdown
    or a terminated backend, or the end of the stream); a NOTIFY is the harmless exception,
    which ``_death`` tells apart.
    """
    pgconn = conn.pgconn
    if pgconn.status != ConnStatus.OK:
        return False
    try:
        poller = select.poll()
        poller.register(pgconn.socket, _POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


async def _death(conn: AsyncConnection[Any]) -> psycopg.Error | None:
    """Why this idle connection is dead, or None when it lives (no round trip unless the server
    sent something)."""
    if _quiet(conn):
        return None
    if conn.closed:
        return psycopg.OperationalError("the connection is closed")
    try:
        await conn.execute("")  # an empty query: nothing to write twice
    except psycopg.Error as exc:
        return exc
    return None


# The server ends these sessions one at a time; every other death (a shutdown, a crash, a
# failover, a terminated backend) is taken as the pool's: its other connections died with it.
_ALONE = (psycopg.errors.IdleSessionTimeout, psycopg.errors.IdleInTransactionSessionTimeout)


async def checkout(pool: AsyncConnectionPool[Any]) -> AsyncConnection[Any]:
    """A pooled connection that is alive as far as can be known without sending anything."""
    try:
        watch = WAITS.get(id(pool)) if WAITS else None
        if watch is None:
            conn: AsyncConnection[Any] = await pool.getconn()
        else:
            started = time.perf_counter()
            watch.waiting += 1
            try:
                conn = await pool.getconn()
            finally:  # a checkout that timed out waited too, longest of all
                watch.waiting -= 1
                watch.observe(time.perf_counter() - started)
        if not _quiet(conn):
            conn = await _alive(pool, conn)
        role = getattr(pool, "role", None)
        if role is not None and _wrong_role(role, conn):
            conn = await _rightly_placed(pool, conn)
        return conn
    except (psycopg.Error, PoolTimeout) as exc:
        raise translate_error(exc) from None


def _wrong_role(role: str, conn: AsyncConnection[Any]) -> bool:
    """Is this connection's server no longer the ``role`` its pool's target_session_attrs
    requires (a standby promoted, a primary demoted)? Unknown (before PostgreSQL 14) counts as
    right.

    A session learns of its server's promotion at the end of its next statement (the server
    reports in_hot_standby then), so that one statement, a read, is served by the new primary;
    the checkouts after it are not."""
    standby = conn.pgconn.parameter_status(b"in_hot_standby")
    if standby is None:
        return False
    return (standby == b"on") != (role == "standby")


async def _rightly_placed(pool: AsyncConnectionPool[Any], conn: AsyncConnection[Any],
                          ) -> AsyncConnection[Any]:
    # Its server changed role under it: so did every idle connection to that server. The
    # pool is drained, and this one, older than the drain, is closed as it is handed back;
    # libpq's own check picks the server of a new one.
    try:
        await pool.drain()
    finally:
        await pool.putconn(conn)
    fresh: AsyncConnection[Any] = await pool.getconn()
    return fresh


async def _alive(pool: AsyncConnectionPool[Any], conn: AsyncConnection[Any],
                 ) -> AsyncConnection[Any]:
    for attempt in range(3):
        try:
            death = await _death(conn)
            if death is None:
                return conn
            # The third death in a row drains the pool whatever its cause (every idle session
            # may have met idle_session_timeout): the one handed out unchecked below is new.
            if attempt == 2 or not isinstance(death, _ALONE):
                await pool.drain()
        except BaseException:
            # Cancelled (a request's timeout) while holding it: the pool gets it back, or it
            # would be lent out for good.
            await pool.putconn(conn)
            raise
        await pool.putconn(conn)
        conn = await pool.getconn()
    return conn


async def _begin(pool: AsyncConnectionPool[Any]) -> AsyncConnection[Any]:
    # BEGIN writes nothing: on a connection that died after the poll, one more try.
    for attempt in (1, 2):
        conn = await checkout(pool)
        try:
            await conn.execute("BEGIN")
        except psycopg.Error as exc:
            await pool.putconn(conn)
            if attempt == 2 or not conn.broken:
                raise translate_error(exc) from None
            continue
        except BaseException:
            # Cancelled before the caller's exit stack holds it: returned here, the pool rolls
            # back the BEGIN (three timed-out requests emptied a pool of three).
            await pool.putconn(conn)
            raise
        return conn
    raise AssertionError("unreachable")


async def begin(stack: AsyncExitStack, pool: AsyncConnectionPool[Any]) -> AsyncConnection[Any]:
    """A pooled connection inside ``BEGIN``, handed back to ``pool`` when ``stack`` closes; the
    caller ends the transaction (plain COMMIT, or two-phase when there are several)."""
    conn = await _begin(pool)
    stack.push_async_callback(pool.putconn, conn)
    return conn


async def commit(conn: AsyncConnection[Any]) -> None:
    """COMMIT; a connection lost before its reply is ``OutcomeUnknownError``, not a failure."""
    try:
        done = await conn.execute("COMMIT")
    except psycopg.OperationalError as exc:
        if conn.broken:
            raise OutcomeUnknownError(
                f"the connection was lost after COMMIT was sent ({first_line(exc)}): the "
                "transaction may or may not have committed") from exc
        raise translate_error(exc) from None
    except psycopg.Error as exc:
        raise translate_error(exc) from None
    if done.statusmessage == "ROLLBACK":  # the server had aborted it: COMMIT rolls back
        raise TransactionAbortedError("the server rolled the transaction back at COMMIT (a "
                                      "statement in it had failed); nothing was committed")


async def rollback(conn: AsyncConnection[Any]) -> None:
    """ROLLBACK if the connection still lives; a dead one was rolled back by the server."""
    if not conn.broken:
        # A failed ROLLBACK is harmless: the pool resets or drops what it gets back.
        with suppress(psycopg.Error):
            await conn.execute("ROLLBACK")


class Fresh:
    """A connection of its own from ``pool``, for one short step such as settling a
    two-phase part whose connection was lost."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._conn: AsyncConnection[Any] | None = None

    async def __aenter__(self) -> AsyncConnection[Any]:
        self._conn = await checkout(self._pool)
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._pool.putconn(self._conn)


class Joinable(Protocol):
    """A unit of work that keeps one begun connection per database (a Transaction)."""

    async def _executor_for(self, service: str) -> Executor: ...

    def _interrupted(self, service: str, error: BaseException) -> None: ...


class Joined:
    """A statement inside a Transaction: its connection, taken on first use."""

    __slots__ = ("_service", "_tx")

    def __init__(self, tx: Joinable, service: str) -> None:
        self._tx, self._service = tx, service

    async def __aenter__(self) -> Executor:
        return await self._tx._executor_for(self._service)

    async def __aexit__(self, exc_type: object, error: BaseException | None,
                        traceback: object) -> None:
        if error is not None:  # the transaction decides whether it can still commit
            self._tx._interrupted(self._service, error)


class _Borrowed:
    """One pooled autocommit connection for one statement, handed back on exit."""

    __slots__ = ("_conn", "_hooks", "_pool", "_prepare")

    def __init__(self, pool: AsyncConnectionPool[Any], hooks: QueryHooks, prepare: bool) -> None:
        self._pool, self._hooks, self._prepare = pool, hooks, prepare
        self._conn: AsyncConnection[Any] | None = None

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._pool.putconn(self._conn)


class ReadCall(_Borrowed):
    """One read; a read lost with its connection is sent once more on a fresh one (reading
    again changes nothing)."""

    __slots__ = ()

    async def __aenter__(self) -> Executor:
        self._conn = await checkout(self._pool)
        return Executor(self._conn, self._hooks, self._prepare, self._replace)

    async def _replace(self) -> AsyncConnection[Any]:
        if self._conn is not None:
            await self._pool.putconn(self._conn)
        self._conn = None
        self._conn = await checkout(self._pool)
        return self._conn


class AutocommitWrite(_Borrowed):
    """One single-statement write: it commits on its own, so a connection lost while it runs
    is ``OutcomeUnknownError``, never a second send."""

    __slots__ = ()

    async def __aenter__(self) -> Executor:
        self._conn = await checkout(self._pool)
        return Executor(self._conn, self._hooks, self._prepare, unknown_if_lost=True)


class WriteCall:
    """Borrow a pooled connection and run one write method in a transaction of its own."""

    __slots__ = ("_conn", "_hooks", "_pool", "_prepare")

    def __init__(self, pool: AsyncConnectionPool[Any], hooks: QueryHooks, prepare: bool) -> None:
        self._pool, self._hooks, self._prepare = pool, hooks, prepare
        self._conn: AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Executor:
        self._conn = await _begin(self._pool)
        return Executor(self._conn, self._hooks, self._prepare)

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if exc_type is None:
                await commit(conn)
            else:
                await rollback(conn)
        finally:
            with translate():
                await self._pool.putconn(conn)

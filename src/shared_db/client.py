"""The client services import: pools, transactions, retries and the repositories.

``Database`` is built from settings (never at import time) and owns one psycopg connection pool
per database of the topology. Reads called on it directly (``await db.users.get(id)``) borrow a
connection for one autocommit statement, one round trip. Writes called on it directly run in a
transaction of their own, with their audit rows. ``async with db.transaction() as tx`` groups
writes: it commits when the block ends and rolls back on any exception. ``await db.run(fn,
retries=3)`` re-runs a whole transaction after serialization failures and deadlocks.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared_db import idempotency, tracing, twophase
from shared_db.base import Service
from shared_db.batching import Batcher
from shared_db.calls import AutocommitWrite, Fresh, ReadCall, WriteCall
from shared_db.config import QueryLogSettings, Settings
from shared_db.context import ActorContext, current_actor
from shared_db.devserver import shared_url
from shared_db.engine import async_engine
from shared_db.errors import (
    ClientClosedError,
    ConfigError,
    RetryExhaustedError,
    TransientConflictError,
    ValidationError,
)
from shared_db.errors_db import translate
from shared_db.observe import QueryLog, telemetry
from shared_db.pooling import open_pool
from shared_db.repositories import Repositories
from shared_db.services import SERVICES
from shared_db.sql import Executor, QueryHooks
from shared_db.transaction import ISOLATION_LEVELS, Transaction
from shared_db.twophase import Settled
from shared_db.typed import checked
from shared_db.url import ConnectionSettings
from shared_db.validation import seconds as check_seconds
from shared_db.validation import shown

if TYPE_CHECKING:
    from shared_db.metrics import Metrics

T = TypeVar("T")
Isolation = Literal["read committed", "repeatable read", "serializable"]
MAX_AGE = 86_400.0 * 3650


def _given(name: str, value: object, kind: Any, what: str) -> None:
    if not isinstance(value, kind):
        raise ValidationError(name, f"must be {what}, got {type(value).__name__}")


class Database(Repositories):
    """Pools and transactions for one topology; use ``async with Database(settings) as db``."""

    def __init__(self, settings: Settings, hooks: QueryHooks | None = None,
                 log: QueryLogSettings | None = None, recover_after: float | None = 60.0,
                 ) -> None:
        """``recover_after``: when the topology has several databases, ``open`` settles the
        two-phase transactions a crashed process left prepared longer ago than this many
        seconds (``recovered`` lists them); None leaves that to ``shared-db db recover``.

        Raises:
            ValidationError: an argument of the wrong type (``settings`` comes from
                ``load_settings()``), or ``recover_after`` outside 0 s to a day.
        """
        _given("settings", settings, Settings, "the Settings of load_settings()")
        _given("hooks", hooks, QueryHooks | None, "QueryHooks or None")
        _given("log", log, QueryLogSettings | None, "QueryLogSettings or None")
        if recover_after is not None and (isinstance(recover_after, bool) or not isinstance(
                recover_after, (int, float)) or not 0 <= recover_after <= 86_400):
            raise ValidationError("recover_after", "must be None or a number of seconds from 0 "
                                  f"to 86400, got {shown(recover_after)}")
        self.settings = settings
        self.recover_after = recover_after
        self.recovered: list[Settled] = []
        self.hooks = hooks or QueryHooks()
        self.query_log = QueryLog(log or settings.query_log()).install(self.hooks)
        self.metrics: Metrics | None = telemetry(settings.telemetry, self.hooks, self.query_log)
        """Prometheus metrics (``SHARED_DB_METRICS``); serve ``metrics.registry``."""
        self._pools: dict[str, AsyncConnectionPool[AsyncConnection[Any]]] = {}
        self._connections: dict[str, ConnectionSettings] = {}
        self._orm_engines: dict[str, AsyncEngine] = {}
        self._replicas: dict[str, AsyncConnectionPool[AsyncConnection[Any]]] = {}
        self._replica_settings = {
            service: settings.connection(url, "DATABASE_READ_URL" if settings.topology
                                         == "shared" else f"{service.upper()}_READ_URL")
            for service, url in settings.read_urls.items()}
        if settings.topology == "per-service":
            for service in SERVICES:
                self._connections[service] = settings.connection(
                    settings.service_urls[service], f"{service.upper()}_DATABASE_URL")
        self.batcher: Batcher | None = Batcher(self)
        self._opening = asyncio.Lock()
        super().__init__(self)

    async def open(self) -> Database:
        """Open the pools (starting the embedded server when ``DATABASE_URL`` is unset); on
        an open ``Database``, nothing more (a second set of pools would never be closed)."""
        async with self._opening:
            if not self._pools:
                await self._open()
        return self

    async def _open(self) -> None:
        if not self._connections:
            conn = self.settings.connection(shared_url(self.settings))
            self._connections = dict.fromkeys(SERVICES, conn)
        opened: dict[str, AsyncConnectionPool[AsyncConnection[Any]]] = {}
        replicas: dict[str, AsyncConnectionPool[AsyncConnection[Any]]] = {}
        try:
            for conn in {c.libpq_url(): c for c in self._connections.values()}.values():
                opened[conn.libpq_url()] = await open_pool(conn)
            self._pools = {s: opened[c.libpq_url()] for s, c in self._connections.items()}
            if len(opened) > 1:
                await self._check_two_phase()
                if self.recover_after is not None:  # a restarted service frees its locks
                    self.recovered = await self.recover(self.recover_after)
            for conn in {c.libpq_url(): c for c in self._replica_settings.values()}.values():
                replicas[conn.libpq_url()] = await open_pool(conn)
        except BaseException:
            # The caller never gets a Database to close: pools opened so far would keep
            # connections, and keep reconnecting in the background.
            for pool in [*opened.values(), *replicas.values()]:
                await pool.close()
            self._pools = {}
            raise
        self._replicas = {s: replicas[c.libpq_url()] for s, c in self._replica_settings.items()}
        if self.metrics is not None:
            self.metrics.watch(self._pools, self._replicas)

    def _distinct_pools(self) -> list[AsyncConnectionPool[AsyncConnection[Any]]]:
        return list({id(p): p for p in self._pools.values()}.values())

    async def _check_two_phase(self) -> None:
        # Fail at start-up, not at the first cross-database commit in production.
        for service, pool in self._pools.items():
            async with pool.connection() as conn:
                cursor = await conn.execute("SHOW max_prepared_transactions")
                row = await cursor.fetchone()
            if row is None or int(row[0]) == 0:
                await self.close()
                raise ConfigError("max_prepared_transactions", f"is 0 on the {service} "
                                  "database; per service, transactions spanning databases "
                                  "commit in two phases: set it (e.g. 64) and restart")

    @checked
    async def recover(self, older_than: float = 60.0) -> list[Settled]:
        """Settle the two-phase transactions a crashed process left prepared (all or nothing;
        see ``shared_db.twophase``). Only parts older than ``older_than`` seconds are touched.
        """
        if not 0 <= older_than <= MAX_AGE:
            raise ValidationError("older_than", f"must be a number of seconds from 0 to "
                                  f"{MAX_AGE:g}")
        self._require_open()  # closed, it would settle nothing and say so by returning []
        async with AsyncExitStack() as stack:
            # Checked out as every call's connection is: after a restart the pool's idle
            # connections are dead, and the first recover() must not fail on one.
            conns = [await stack.enter_async_context(Fresh(pool))
                     for pool in self._distinct_pools()]
            with translate():
                return await twophase.recover(conns, older_than)

    async def close(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
        replicas = {id(p): p for p in self._replicas.values()}.values()
        for pool in [*self._distinct_pools(), *replicas]:
            await pool.close()
        for engine in self._orm_engines.values():
            await engine.dispose()
        self._pools, self._orm_engines, self._replicas = {}, {}, {}

    @checked
    def session(self, service: Service = "auth") -> AsyncSession:
        """A SQLAlchemy ``AsyncSession`` on ``service``'s database, for ORM unit-of-work code.

        The repositories do not need it; it is for work that is not on a hot path and reads
        best as ORM objects. Its engine (and pool, sized like the main one) is created on first
        use. The caller commits: ``async with db.session() as s, s.begin(): ...``.
        """
        self._require_open()  # an engine made now would outlive close(), never disposed
        conn = self._connections[service]
        key = conn.libpq_url()
        if key not in self._orm_engines:
            self._orm_engines[key] = async_engine(conn)
        return AsyncSession(self._orm_engines[key], expire_on_commit=False)

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @checked
    def connection_settings(self, service: Service) -> ConnectionSettings:
        return self._connections[service]

    def _require_open(self) -> None:
        if not self._pools:
            raise ClientClosedError("the Database is not open; use `async with "
                                    "Database(settings)`")

    @checked
    def pool(self, service: Service) -> AsyncConnectionPool[Any]:
        self._require_open()
        return self._pools[service]

    @checked
    def actor(self) -> ActorContext:
        return current_actor()

    @checked
    def executor(self, service: Service, write: bool = False, primary: bool = False,
                 fresh: bool = False) -> AbstractAsyncContextManager[Executor]:
        """A connection for one call: its own transaction for writes (on the primary);
        autocommit for reads, on the service's replica when it has one, unless ``primary``
        (a single-statement write that needs no transaction) or ``fresh`` (a read that must
        see the latest commit: the answers auth decisions are made on)."""
        if write:
            prepare = not self._connections[service].pgbouncer
            return WriteCall(self.pool(service), self.hooks, prepare)
        replica = None if primary or fresh else self._replicas.get(service)
        if replica is not None:
            prepare = not self._replica_settings[service].pgbouncer
            return ReadCall(replica, self.hooks, prepare)
        pool = self.pool(service)  # first: a closed client says so by name
        prepare = not self._connections[service].pgbouncer
        if primary:
            return AutocommitWrite(pool, self.hooks, prepare)
        return ReadCall(pool, self.hooks, prepare)

    @checked
    def same_database(self, a: Service, b: Service) -> bool:
        """Do services ``a`` and ``b`` share one database (the shared topology)?"""
        return self.pool(a) is self.pool(b)

    @checked
    def unit(self) -> Transaction:
        """A transaction for one write method called on the Database directly."""
        return self.transaction()

    @checked
    def transaction(self, *, isolation: Isolation | None = None,
                    statement_timeout: float | None = None, lock_timeout: float | None = None,
                    actor: ActorContext | None = None) -> Transaction:
        """A unit of work: commits when the block ends, rolls back on any exception.

        Args:
            isolation: ``read committed`` (the server default), ``repeatable read`` or
                ``serializable``.
            statement_timeout: seconds any one statement may run (``SET LOCAL``).
            lock_timeout: seconds a statement may wait for a lock.
            actor: who the audit rows name; default: the ``acting_as`` context.

        Raises (at the block's end, when it had no exception of its own):
            TransactionAbortedError: a call in it failed on the server or was cut off, even if
                the error was caught; nothing was committed (``TransientConflictError`` when
                that failure was one).
        """
        return Transaction(self, isolation, statement_timeout, lock_timeout, actor)

    @checked
    async def run(self, work: Callable[[Transaction], Awaitable[T]], *, retries: int = 0,
                  isolation: Isolation | None = None, statement_timeout: float | None = None,
                  lock_timeout: float | None = None, backoff: float = 0.02,
                  idempotency_key: str | None = None, service: str = "auth",
                  arguments: dict[str, Any] | None = None) -> T:
        """Run ``work`` in a transaction, re-running all of it after a serialization failure
        or deadlock (SQLSTATE 40001 / 40P01), up to ``retries`` times with jittered back-off.

        ``idempotency_key`` runs it exactly once (``shared_db.idempotency``): the key is kept
        in ``service``'s database (choose the one ``work`` writes to), and a repeat returns the
        stored result of the first run. ``work``'s qualified name is what a key is compared
        with, so the same key for another function is ``IdempotencyKeyReusedError``; its
        result must be JSON values, shared-db records, Decimal, UUID, datetimes or enums.
        ``arguments`` (values of those kinds) are compared too: give the request's own values
        (an amount, an account), so that one key sent again for another request is refused
        rather than answered with the first one's result, as a repository method's is.

        Raises:
            RetryExhaustedError: the last attempt failed too (chained to its error).
            TransactionAbortedError: ``work`` caught an error of a call that had left the
                transaction unable to commit; nothing was committed.
        """
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError("retries", f"must be a whole number >= 0, got {shown(retries)}")
        backoff = check_seconds("backoff", backoff, maximum=60)
        service = idempotency.service_of(service)  # checked with or without a key
        keyed = None if idempotency_key is None else (idempotency.key(idempotency_key), service)
        request = idempotency.arguments(arguments)
        operation = f"run:{getattr(work, '__module__', '')}." \
                    f"{getattr(work, '__qualname__', type(work).__name__)}"

        def unit() -> Transaction:
            return self.transaction(isolation=isolation, lock_timeout=lock_timeout,
                                    statement_timeout=statement_timeout)

        for attempt in range(retries + 1):
            try:
                with tracing.span("shared_db.attempt", **{"shared_db.attempt": attempt}):
                    if keyed is None:
                        async with unit() as tx:
                            return await _awaited(work, tx)
                    return await idempotency.once(unit, keyed[1], keyed[0], operation,
                                                  request, lambda tx: _awaited(work, tx))
            except TransientConflictError as exc:
                if self.metrics is not None and attempt < retries:
                    self.metrics.retries.labels(exc.driver_error or type(exc).__name__).inc()
                if attempt == retries:
                    raise RetryExhaustedError(f"gave up after {attempt + 1} attempt(s): "
                                              f"{exc}") from exc
                await asyncio.sleep(backoff * (2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")


async def _awaited(work: Callable[[Transaction], Awaitable[T]], tx: Transaction) -> T:
    outcome = work(tx)
    if not inspect.isawaitable(outcome):  # a plain function: nothing to await, nothing ran
        raise ValidationError("work", "must be an async function taking the transaction, "
                              f"got one returning {type(outcome).__name__}")
    return await outcome


__all__ = ["ISOLATION_LEVELS", "Database", "Isolation", "Transaction"]

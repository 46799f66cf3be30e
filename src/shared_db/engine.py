"""Engines built from settings (never at import time), with connection errors made readable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shared_db.errors import DatabaseUnavailableError
from shared_db.errors_db import unreachable
from shared_db.url import DEFAULT_CONNECT_TIMEOUT, ConnectionSettings


def connect_timeout(conn: ConnectionSettings) -> int:
    """The URL's ``connect_timeout``, or the default."""
    return int(conn.libpq.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))


def unavailable(conn: ConnectionSettings, exc: BaseException) -> DatabaseUnavailableError:
    """The ``DatabaseUnavailableError`` for a failed attempt to connect to ``conn``."""
    password = conn.url.password
    return unreachable(conn.safe_url(), exc, str(password) if password else None)


def connect_args(conn: ConnectionSettings) -> dict[str, Any]:
    """psycopg connection arguments implied by the URL's Prisma-style parameters."""
    args: dict[str, Any] = {}
    if "connect_timeout" not in conn.libpq:
        args["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    if conn.pgbouncer:
        # Transaction-mode PgBouncer hands each transaction a different server connection, so
        # a statement prepared on one may not exist on the next.
        args["prepare_threshold"] = None
    if conn.schema:
        args["options"] = f"-c search_path={conn.schema}"
    return args


# The engines connect through libpq with the URL as the user wrote it (several hosts,
# target_session_attrs and all), which SQLAlchemy's one-host URL cannot carry.
_DIALECT = "postgresql+psycopg://"


def sync_engine(conn: ConnectionSettings) -> Engine:
    """An engine for migrations and operations: no pool, one connection per command."""
    url, args = conn.libpq_url(), connect_args(conn)
    return create_engine(_DIALECT, poolclass=NullPool,
                         creator=lambda: psycopg.connect(url, **args))


def async_engine(conn: ConnectionSettings) -> AsyncEngine:
    """The pooled async engine service code uses, sized from the URL."""
    url, args = conn.libpq_url(), connect_args(conn)

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(url, **args)

    return create_async_engine(
        _DIALECT,
        pool_size=conn.pool_size,
        max_overflow=0,
        pool_timeout=conn.pool_timeout,
        pool_pre_ping=False,
        async_creator=connect,
    )


def connect_direct(conn: ConnectionSettings, **kwargs: Any) -> psycopg.Connection[TupleRow]:
    """A plain psycopg connection (for COPY, snapshots, admin statements) that gives up within
    ``connect_timeout``; an unreachable server is ``DatabaseUnavailableError``."""
    defaults = {k: v for k, v in connect_args(conn).items() if k == "connect_timeout"}
    try:
        return psycopg.connect(conn.libpq_url(), **{**defaults, **kwargs})
    except psycopg.OperationalError as exc:
        raise unavailable(conn, exc) from exc


async def reach(conn: ConnectionSettings, kwargs: dict[str, Any]) -> None:
    """Connect once with ``kwargs`` and hang up.

    Raises:
        DatabaseUnavailableError: refused, timed out, authentication failed, ... (the cause).
    """
    try:
        probe = await psycopg.AsyncConnection.connect(conn.libpq_url(), **kwargs)
    except psycopg.OperationalError as exc:
        raise unavailable(conn, exc) from exc
    await probe.close()


@contextmanager
def connect_to(conn: ConnectionSettings) -> Iterator[Connection]:
    """A connection for one operation; an unreachable server is ``DatabaseUnavailableError``."""
    try:
        connection = sync_engine(conn).connect()
    except OperationalError as exc:
        raise unavailable(conn, exc) from exc
    with connection:
        yield connection

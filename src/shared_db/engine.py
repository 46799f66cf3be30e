"""Engines built from settings (never at import time), with connection errors made readable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shared_db.connect import connect_args, unavailable
from shared_db.url import ConnectionSettings

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


@contextmanager
def connect_to(conn: ConnectionSettings) -> Iterator[Connection]:
    """A connection for one operation; an unreachable server is ``DatabaseUnavailableError``."""
    try:
        connection = sync_engine(conn).connect()
    except OperationalError as exc:
        raise unavailable(conn, exc) from exc
    with connection:
        yield connection

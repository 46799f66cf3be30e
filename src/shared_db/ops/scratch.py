"""Throw-away databases beside the real one (shadow for ``migrate dev``, restore checks)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from shared_db.connect import connect_direct
from shared_db.url import ConnectionSettings


def _admin(conn: ConnectionSettings) -> psycopg.Connection[tuple[object, ...]]:
    return connect_direct(conn.with_database("postgres"), autocommit=True)


def create_database(conn: ConnectionSettings, name: str) -> ConnectionSettings:
    with _admin(conn) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return conn.with_database(name)


def drop_database(conn: ConnectionSettings, name: str) -> None:
    with _admin(conn) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@contextmanager
def scratch_database(conn: ConnectionSettings, purpose: str) -> Iterator[ConnectionSettings]:
    """A new empty database on ``conn``'s server, dropped when the block ends."""
    name = f"{conn.database[:30]}_{purpose}_{secrets.token_hex(4)}"
    scratch = create_database(conn, name)
    try:
        yield scratch
    finally:
        drop_database(conn, name)

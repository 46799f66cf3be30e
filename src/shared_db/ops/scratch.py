"""Throw-away databases beside the real one (shadow for ``migrate dev``, restore checks).

A scratch database is dropped when its block ends, but a process killed inside the block (a CI
timeout, the OOM killer, ``kill -9``) cannot drop it, and each one left is a whole database on
the server. So the maker holds a session advisory lock named after the scratch database for as
long as it lives, taken before the database is created; and every new scratch database first
drops those of the same real database whose lock nobody holds: their maker is gone, since the
server frees a session's advisory locks when the session ends, however it ends.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from shared_db.connect import connect_direct
from shared_db.url import ConnectionSettings

log = logging.getLogger("shared_db.ops")
LOCK_CLASS = 0x5C7A7C
"""The first key of the advisory locks that keep scratch databases (the second: their name's)."""
PURPOSES = ("shadow", "capture", "baseline", "verify")


def _admin(conn: ConnectionSettings) -> psycopg.Connection[tuple[object, ...]]:
    return connect_direct(conn.with_database("postgres"), autocommit=True)


def create_database(conn: ConnectionSettings, name: str) -> ConnectionSettings:
    with _admin(conn) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return conn.with_database(name)


def drop_database(conn: ConnectionSettings, name: str) -> None:
    with _admin(conn) as admin:
        _drop(admin, name)


def _drop(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


def _drop_abandoned(admin: psycopg.Connection[tuple[object, ...]], prefix: str) -> None:
    """Drop the scratch databases named after ``prefix`` whose maker has gone."""
    pattern = re.compile(rf"{re.escape(prefix)}_({'|'.join(PURPOSES)})_[0-9a-f]{{8}}")
    names = [str(n) for (n,) in admin.execute("SELECT datname FROM pg_database")]
    for name in filter(pattern.fullmatch, names):
        row = admin.execute("SELECT pg_try_advisory_lock(%s, %s)",
                            (LOCK_CLASS, _key(name))).fetchone()
        if row is None or not row[0]:
            continue  # its maker is still at work
        try:
            _drop(admin, name)
            log.info("dropped %s, a scratch database left by a process that was killed", name)
        except psycopg.Error as exc:  # not ours to drop (another owner): leave it
            log.debug("left %s: %s", name, exc)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, _key(name)))


@contextmanager
def scratch_database(conn: ConnectionSettings, purpose: str) -> Iterator[ConnectionSettings]:
    """A new empty database on ``conn``'s server, dropped when the block ends (or, when the
    process is killed inside it, by the next scratch database made for the same database)."""
    prefix = conn.database[:30]
    name = f"{prefix}_{purpose}_{secrets.token_hex(4)}"
    with _admin(conn) as admin:
        admin.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, _key(name)))
        _drop_abandoned(admin, prefix)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield conn.with_database(name)
        finally:
            try:
                _drop(admin, name)
            except psycopg.OperationalError:  # this session died with the block (a restart)
                drop_database(conn, name)

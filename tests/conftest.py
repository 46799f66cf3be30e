"""Test databases on a real PostgreSQL.

``DATABASE_URL`` set: its server is used (CI runs once against 127.0.0.1:5432). Unset: the embedded
server is started in ``SHARED_DB_HOME`` (default ``./.shared-db``). Either way each test gets
its own database, created from a migrated template, so the schema comes from the migrations.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared_db.client import Database
from shared_db.config import PACKAGE_MIGRATIONS, Settings, load_settings
from shared_db.ops import devserver, migrate
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import Target, resolve_targets
from shared_db.sql import QueryEvent
from shared_db.url import ConnectionSettings, parse_database_url


@dataclass(frozen=True)
class DbFixture:
    """One database of the test run."""

    url: str
    connection: ConnectionSettings

    def settings(self, **overrides: object) -> Settings:
        env = {"DATABASE_URL": self.url}
        return load_settings(env) if not overrides else Settings(  # type: ignore[arg-type]
            database_url=self.url, **overrides)

    def target(self) -> Target:
        return resolve_targets(self.settings())[0]

    def env(self) -> dict[str, str]:
        """The process environment pointing commands at this database."""
        return {**os.environ, "DATABASE_URL": self.url}


@pytest.fixture(scope="session")
def server() -> ConnectionSettings:
    url = os.environ.get("DATABASE_URL") or devserver.start(
        Path(os.environ.get("SHARED_DB_HOME") or ".shared-db"))
    return parse_database_url(url)


def _new_db(server: ConnectionSettings, template: str | None = None) -> DbFixture:
    name = f"sdbtest_{secrets.token_hex(6)}"
    if template is None:
        conn = create_database(server, name)
    else:
        from psycopg import connect, sql

        with connect(server.with_database("postgres").libpq_url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        conn = server.with_database(name)
    return DbFixture(conn.libpq_url(), conn)


@pytest.fixture(scope="session")
def template(server: ConnectionSettings) -> Iterator[str]:
    db = _new_db(server)
    migrate.deploy(db.target(), PACKAGE_MIGRATIONS)
    yield db.connection.database
    drop_database(server, db.connection.database)


@pytest.fixture
def empty_db(server: ConnectionSettings) -> Iterator[DbFixture]:
    """A new database with nothing in it."""
    db = _new_db(server)
    yield db
    drop_database(server, db.connection.database)


@pytest.fixture
def migrated_db(server: ConnectionSettings, template: str) -> Iterator[DbFixture]:
    """A new database with every migration applied and no rows."""
    db = _new_db(server, template)
    yield db
    drop_database(server, db.connection.database)


@pytest.fixture
async def db(migrated_db: DbFixture) -> AsyncIterator[Database]:
    """An open client on a fresh migrated database."""
    async with Database(migrated_db.settings()) as database:
        yield database


@pytest.fixture
def statements(db: Database) -> list[QueryEvent]:
    """Every statement ``db`` runs from here on (counted by the client's query hook)."""
    seen: list[QueryEvent] = []
    db.hooks.listeners.append(seen.append)
    return seen

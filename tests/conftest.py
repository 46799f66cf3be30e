"""Test databases on a real PostgreSQL.

``DATABASE_URL`` set: its server is used (CI runs once against 127.0.0.1:5432). Unset: the embedded
server is started in ``SHARED_DB_HOME`` (default ``./.shared-db``). Either way each test gets
its own database, created from a migrated template, so the schema comes from the migrations.

Every test that uses the client (``db``) or ``stores`` runs three times: on one shared database,
per service (four databases, each migrated with only that service's chain), and on the shared
database through a real PgBouncer in transaction pooling mode (``pgbouncer=true``). Mark a test
``shared_only`` when it is about the single database itself.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from bench.bouncer import client_url
from shared_db import devserver
from shared_db.client import Database
from shared_db.config import PACKAGE_MIGRATIONS, Settings, load_settings
from shared_db.ops import migrate
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import Target, resolve_targets
from shared_db.services import SERVICES
from shared_db.sql import QueryEvent
from shared_db.url import ConnectionSettings, parse_database_url
from tests.bouncer import pgbouncer
from tests.state import digest

TOPOLOGIES = ("shared", "per-service", "pgbouncer")


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
        with psycopg.connect(server.with_database("postgres").libpq_url(),
                             autocommit=True) as admin:
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


@dataclass(frozen=True)
class Stores:
    """The databases of one topology under test: service -> URL (all equal when shared)."""

    topology: str
    urls: dict[str, str]
    client_url: str | None = None
    """Where the client connects when not straight to ``urls`` (through PgBouncer)."""

    def settings(self) -> Settings:
        if self.topology != "per-service":
            return load_settings({"DATABASE_URL": self.client_url or self.urls["auth"]})
        return load_settings({"SHARED_DB_TOPOLOGY": "per-service", **{
            f"{s.upper()}_DATABASE_URL": url for s, url in self.urls.items()}})

    def url(self, service: str) -> str:
        return self.urls[service]

    def digest(self) -> dict[str, tuple[int, str | None]]:
        """Every table's row count and md5, from whichever database holds it."""
        found: dict[str, tuple[int, str | None]] = {}
        for url in dict.fromkeys(self.urls.values()):
            found |= digest(url)
        return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stores" in metafunc.fixturenames:
        shared_only = metafunc.definition.get_closest_marker("shared_only") is not None
        metafunc.parametrize("stores", TOPOLOGIES[:1] if shared_only else TOPOLOGIES,
                             indirect=True)


@pytest.fixture(scope="session")
def bounced(server: ConnectionSettings, template: str) -> Iterator[tuple[str, str]]:
    """A migrated database and its URL through a PgBouncer in transaction pooling mode.

    One database for the session, emptied before each test (PgBouncer keeps server
    connections per database; a database per test would only churn them).
    """
    db = _new_db(server, template)
    with pgbouncer(server) as port:
        yield db.url, f"{client_url(server, port, db.connection.database)}?pgbouncer=true"
    drop_database(server, db.connection.database)


@pytest.fixture(scope="session")
def service_databases(server: ConnectionSettings) -> Iterator[dict[str, str]]:
    """Per service, a database migrated with that service's chain only, shared by the tests.

    Creating four databases per test costs more than the tests themselves, so the set is made
    once and emptied before each test (``TRUNCATE``). Tests that change a schema or leave
    prepared transactions make databases of their own instead.
    """
    made = {service: _new_db(server) for service in SERVICES}
    for service, db in made.items():
        migrate.deploy(Target(service, db.connection, (service,)), PACKAGE_MIGRATIONS)
    yield {service: db.url for service, db in made.items()}
    for db in made.values():
        drop_database(server, db.connection.database)


def _empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename NOT LIKE 'alembic_version%'")]
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier,
                                                                          tables))))


@pytest.fixture
def stores(request: pytest.FixtureRequest, server: ConnectionSettings) -> Iterator[Stores]:
    """Fresh, empty, migrated databases of the topology in ``request.param``."""
    if request.param == "per-service":
        urls = request.getfixturevalue("service_databases")
        for url in urls.values():
            _empty(url)
        yield Stores(request.param, dict(urls))
        return
    if request.param == "pgbouncer":
        direct, client_url = request.getfixturevalue("bounced")
        _empty(direct)
        yield Stores(request.param, dict.fromkeys(SERVICES, direct), client_url)
        return
    shared = _new_db(server, request.getfixturevalue("template"))
    yield Stores(request.param, dict.fromkeys(SERVICES, shared.url))
    drop_database(server, shared.connection.database)


@pytest.fixture
async def db(stores: Stores) -> AsyncIterator[Database]:
    """An open client on fresh migrated databases of the topology under test."""
    async with Database(stores.settings()) as database:
        yield database


@pytest.fixture
def statements(db: Database) -> list[QueryEvent]:
    """Every statement ``db`` runs from here on (counted by the client's query hook)."""
    seen: list[QueryEvent] = []
    db.hooks.listeners.append(seen.append)
    return seen


@pytest.fixture
def private_stores(server: ConnectionSettings, request: pytest.FixtureRequest) -> Iterator[Stores]:
    """Per-service databases of this test alone (prepared leftovers would block others)."""
    templates = request.getfixturevalue("service_databases")
    made = {s: _new_db(server, conninfo_to_dict(templates[s])["dbname"]) for s in SERVICES}
    for db in made.values():
        _empty(db.url)  # the templates are the shared per-service set, rows and all
    yield Stores("per-service", {s: made[s].url for s in SERVICES})
    for db in made.values():
        with psycopg.connect(db.url, autocommit=True) as conn:
            for (gid,) in conn.execute("SELECT gid FROM pg_prepared_xacts "
                                       "WHERE database = current_database()").fetchall():
                conn.execute(sql.SQL("ROLLBACK PREPARED {}").format(gid))
        drop_database(server, db.connection.database)

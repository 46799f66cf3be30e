"""What the ``migrate adopt`` tests check around a run: the state it must not touch, a Prisma
database changed first, and a refusal read as a dry run, a real run and a plain one."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from tests.catalog import snapshot
from tests.cli.test_migrate_review import _ok
from tests.conftest import DbFixture
from tests.state import digest


def state(url: str) -> tuple[Any, ...]:
    """Schema, version tables, rows, and Prisma's history: all a failed adopt must not touch."""
    with psycopg.connect(url) as conn:
        history = conn.execute("SELECT migration_name FROM _prisma_migrations "
                               "ORDER BY migration_name").fetchall()
    return snapshot(url, version_tables=True), digest(url), history


def prisma_with(db: DbFixture, *statements: str | sql.Composable) -> tuple[Any, ...]:
    """``db`` changed by ``statements`` (autocommit), and its state before adopt runs."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    return state(db.url)


def refused(db: DbFixture, code: int = 4) -> dict[str, Any]:
    """adopt's --json document, the same from a dry run and a real run; the plain run exits
    with the same code."""
    dry = json.loads(_ok("migrate", "adopt", "--dry-run", "--json", env=db.env(), code=code))
    doc = json.loads(_ok("migrate", "adopt", "--json", env=db.env(), code=code))
    assert dry["problems"] == doc["problems"] and doc["adopted"] is False
    _ok("migrate", "adopt", env=db.env(), code=code)
    return doc

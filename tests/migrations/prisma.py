"""What the ``migrate adopt`` tests check around a run: the state a failed one must not touch."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.catalog import snapshot
from tests.state import digest


def state(url: str) -> tuple[Any, ...]:
    """Schema, version tables, rows, and Prisma's history: all a failed adopt must not touch."""
    with psycopg.connect(url) as conn:
        history = conn.execute("SELECT migration_name FROM _prisma_migrations "
                               "ORDER BY migration_name").fetchall()
    return snapshot(url, version_tables=True), digest(url), history

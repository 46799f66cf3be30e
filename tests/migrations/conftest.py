"""A database as Prisma Migrate builds it from the guide's schema, for ``migrate adopt``."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import DbFixture

PRISMA_DDL = Path(__file__).parent / "fixtures" / "prisma_guide.sql"


@pytest.fixture
def prisma_db(empty_db: DbFixture) -> DbFixture:
    """``empty_db`` holding the guide's three Prisma migrations and rows in every table."""
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute(PRISMA_DDL.read_text())
    return empty_db

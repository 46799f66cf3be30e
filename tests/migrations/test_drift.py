"""Models and migrations agree; a hand-made change to the database is reported as drift."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.ops import status
from tests.conftest import DbFixture


def test_autogenerate_finds_nothing_after_all_migrations(migrated_db: DbFixture) -> None:
    result = status.status(migrated_db.target(), PACKAGE_MIGRATIONS)
    assert result.drift_checked and result.drift == [] and result.up_to_date


DRIFTS = [
    ("ALTER TABLE users ADD COLUMN nickname text",
     "auth: remove_column users nickname (in the database, not in the models)"),
    ("DROP INDEX payments_user_id_status_idx",
     "payments: add_index payments_user_id_status_idx (in the models, not in the database)"),
    ("ALTER TABLE payments DROP CONSTRAINT payments_user_id_fkey",
     "links: add_fk payments_user_id_fkey"),
    ("ALTER TABLE payments ALTER COLUMN currency SET DEFAULT 'EUR'",
     "payments: modify_default payments.currency"),
    ("ALTER TYPE \"UserRole\" ADD VALUE 'GUEST'", "auth: change_enum_variants"),
    ("ALTER TABLE audit_logs ALTER COLUMN action DROP NOT NULL",
     "admin: modify_nullable audit_logs.action"),
]


@pytest.mark.parametrize(("ddl", "expected"), DRIFTS)
def test_manual_changes_show_as_drift(migrated_db: DbFixture, ddl: str, expected: str) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(ddl)
    result = status.status(migrated_db.target(), PACKAGE_MIGRATIONS)
    assert not result.up_to_date
    assert any(line.startswith(expected) for line in result.drift), result.drift


def test_pending_migrations_are_reported_before_drift(empty_db: DbFixture) -> None:
    result = status.status(empty_db.target(), PACKAGE_MIGRATIONS)
    assert len(result.pending) == 10 and result.applied == []
    assert not result.drift_checked and not result.up_to_date


@pytest.mark.parametrize(("ddl", "expected"), DRIFTS)
def test_a_remembered_clean_check_never_hides_a_later_change(
        migrated_db: DbFixture, tmp_path: Path, ddl: str, expected: str) -> None:
    for _ in range(2):  # compared in full and remembered, then answered from memory
        assert status.status(migrated_db.target(), PACKAGE_MIGRATIONS, cache=tmp_path).up_to_date
    assert len(list((tmp_path / "drift").iterdir())) == 1
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(ddl)
    result = status.status(migrated_db.target(), PACKAGE_MIGRATIONS, cache=tmp_path)
    assert any(line.startswith(expected) for line in result.drift), result.drift

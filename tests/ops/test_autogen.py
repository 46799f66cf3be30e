"""``migrate dev``: model changes become a migration in the owning chain; drift is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Column, Index, MetaData, Text

from shared_db.base import NAMING_CONVENTION, Base
from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.errors import DriftError, MigrationError, ValidationError
from shared_db.ops import autogen, migrate, status
from shared_db.ops.history import all_steps
from tests.catalog import snapshot
from tests.conftest import DbFixture


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A private copy of the migration chains the test may add to."""
    target = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _models_with(extra: str) -> MetaData:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    if extra == "nickname":
        metadata.tables["users"].append_column(Column("nickname", Text, nullable=True))
    if extra == "index":
        Index(None, metadata.tables["payments"].c.currency)
    return metadata


def test_new_column_goes_to_the_owning_chain(empty_db: DbFixture, migrations: Path) -> None:
    models = _models_with("nickname")
    result = autogen.dev(empty_db.target(), migrations, "add_nickname", models)
    assert len(result.applied) == 11  # the ten existing ones, then the new one
    (created,) = result.created
    assert created.chain == "auth" and created.name == "add_nickname"
    expected = migrations / "versions" / "auth" / f"{created.revision}_add_nickname.py"
    assert result.files == [expected]
    assert "ALTER TABLE users ADD COLUMN nickname TEXT" in result.sql
    assert "nickname" in snapshot(empty_db.url)["tables"]["users"]
    assert status.status(empty_db.target(), migrations, models).up_to_date
    # The generated migration rolls back too.
    migrate.down([empty_db.target()], migrations)
    assert "nickname" not in snapshot(empty_db.url)["tables"]["users"]


def test_index_change_goes_to_payments(empty_db: DbFixture, migrations: Path) -> None:
    result = autogen.dev(empty_db.target(), migrations, "index_currency", _models_with("index"))
    assert [s.chain for s in result.created] == ["payments"]
    assert ("payments", "payments_currency_idx") in snapshot(empty_db.url)["indexes"]


def test_no_change_creates_nothing(migrated_db: DbFixture, migrations: Path) -> None:
    result = autogen.dev(migrated_db.target(), migrations, "nothing_new")
    assert result.created == [] and result.files == []
    assert len(all_steps(migrations, migrated_db.target().chains)) == 10


def test_drifted_database_is_refused(migrated_db: DbFixture, migrations: Path) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN hand_made int")
    before = sorted(p.name for p in migrations.rglob("*.py"))
    with pytest.raises(DriftError, match=r"drifted.*hand_made"):
        autogen.dev(migrated_db.target(), migrations, "add_nickname", _models_with("nickname"))
    assert sorted(p.name for p in migrations.rglob("*.py")) == before
    assert "hand_made" in snapshot(migrated_db.url)["tables"]["users"]


@pytest.mark.parametrize(("name", "rule"), [
    ("init", "already used by auth:20260101000000_init"),
    ("Add-Thing", "lower-case letters"),
    ("", "lower-case letters"),
])
def test_bad_names_are_refused(migrated_db: DbFixture, migrations: Path, name: str,
                               rule: str) -> None:
    with pytest.raises(MigrationError if name == "init" else ValidationError, match=rule):
        autogen.dev(migrated_db.target(), migrations, name, _models_with("nickname"))
    assert len(all_steps(migrations, migrated_db.target().chains)) == 10

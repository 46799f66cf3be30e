"""``migrate dev --from-drift``: a database's drift becomes a migration of the owning chain(s),
recorded as applied there, that builds the same schema in every other database."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Column, MetaData, Text

from shared_db.base import NAMING_CONVENTION, Base
from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.errors import MigrationError
from shared_db.ops import capture, migrate, status
from shared_db.ops.history import all_steps
from tests.catalog import snapshot
from tests.conftest import DbFixture

# One hand change per kind of object and chain: a column, an index, a cross-service foreign key
# (links), a default, a nullability.
DRIFT = [
    "ALTER TABLE users ADD COLUMN nickname text",
    "DROP INDEX payments_user_id_status_idx",
    "ALTER TABLE payments DROP CONSTRAINT payments_user_id_fkey",
    "ALTER TABLE payments ALTER COLUMN currency SET DEFAULT 'EUR'",
    "ALTER TABLE audit_logs ALTER COLUMN action DROP NOT NULL",
]


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _drift(url: str, ddls: list[str] = DRIFT) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for ddl in ddls:
            conn.execute(ddl)


def test_drift_captured_stamped_and_replayed_elsewhere(
        migrated_db: DbFixture, empty_db: DbFixture, migrations: Path) -> None:
    _drift(migrated_db.url)
    result = capture.capture(migrated_db.target(), migrations, "hand_changes")
    assert {s.chain for s in result.created} == {"auth", "payments", "admin", "links"}
    assert all(p.exists() and p.parent.parent.parent == migrations for p in result.files)
    assert not list(migrations.parent.glob(".capture-*"))
    # Recorded as applied, nothing pending; the models still differ until they are brought in line.
    after = status.status(migrated_db.target(), migrations)
    assert after.pending == [] and after.unknown == [] and after.drift
    # Another database built by the migrations alone has the drifted schema...
    migrate.deploy(empty_db.target(), migrations)
    assert snapshot(empty_db.url) == snapshot(migrated_db.url)
    # ...and the downgrade takes it back to the package's schema.
    package_head = all_steps(PACKAGE_MIGRATIONS, empty_db.target().chains)[-1].label
    migrate.down([empty_db.target()], migrations, package_head)
    assert status.status(empty_db.target(), PACKAGE_MIGRATIONS).up_to_date


def test_an_enum_value_is_captured(migrated_db: DbFixture, empty_db: DbFixture,
                                   migrations: Path) -> None:
    # Forward only: taking a value out of an enum that the payment_reports view reads is
    # refused by PostgreSQL, whoever wrote the downgrade.
    _drift(migrated_db.url, ["ALTER TYPE \"UserRole\" ADD VALUE 'GUEST'"])
    (step,) = capture.capture(migrated_db.target(), migrations, "guest_role").created
    assert step.chain == "auth"
    migrate.deploy(empty_db.target(), migrations)
    assert snapshot(empty_db.url) == snapshot(migrated_db.url)


def test_a_change_autogenerate_cannot_write_leaves_nothing(
        migrated_db: DbFixture, migrations: Path) -> None:
    # Autogenerate does not compare CHECK constraints: the proof in a scratch database fails.
    _drift(migrated_db.url, ["ALTER TABLE users ADD COLUMN nickname text",
                             "ALTER TABLE users ADD CONSTRAINT nick CHECK (nickname <> '')"])
    count = len(all_steps(migrations, migrated_db.target().chains))
    with pytest.raises(MigrationError, match=r"does not reproduce.*constraint users.nick"):
        capture.capture(migrated_db.target(), migrations, "with_check")
    assert len(all_steps(migrations, migrated_db.target().chains)) == count
    assert not list(migrations.parent.glob(".capture-*"))
    assert status.status(migrated_db.target(), migrations).pending == []


def test_no_drift_writes_nothing(migrated_db: DbFixture, migrations: Path) -> None:
    result = capture.capture(migrated_db.target(), migrations, "nothing")
    assert result.created == [] and result.files == []


def test_models_ahead_of_the_database_are_no_drift_to_capture(
        migrated_db: DbFixture, migrations: Path) -> None:
    # The models differ from the database, but the database is what its migrations build.
    models = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(models)
    models.tables["users"].append_column(Column("nickname", Text, nullable=True))
    result = capture.capture(migrated_db.target(), migrations, "nothing", models)
    assert result.created == [] and result.files == [] and result.drift == []


@pytest.mark.parametrize("name", ["Bad Name", "", "x" * 61, "init"])
def test_bad_name_is_refused_before_anything(migrated_db: DbFixture, migrations: Path,
                                             name: str) -> None:
    _drift(migrated_db.url)
    count = len(all_steps(migrations, migrated_db.target().chains))
    with pytest.raises(MigrationError, match="--name"):
        capture.capture(migrated_db.target(), migrations, name)
    assert len(all_steps(migrations, migrated_db.target().chains)) == count


def test_pending_migrations_are_refused(empty_db: DbFixture, migrations: Path) -> None:
    with pytest.raises(MigrationError, match=r"--from-drift.*deploy"):
        capture.capture(empty_db.target(), migrations, "too_early")

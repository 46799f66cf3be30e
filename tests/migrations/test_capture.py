"""``migrate dev --from-drift``: a database's drift becomes a migration of the owning chain(s),
recorded as applied there, that builds the same schema in every other database; ``migrate
status`` finds drift while migrations are pending."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Column, MetaData, Text

from shared_db.base import NAMING_CONVENTION, Base
from shared_db.config import PACKAGE_MIGRATIONS, load_settings
from shared_db.errors import MigrationError, ValidationError
from shared_db.ops import capture, migrate, status
from shared_db.ops.history import all_steps
from shared_db.ops.targets import resolve_targets
from tests.catalog import snapshot
from tests.conftest import DbFixture
from tests.migrations.extra import copy_with, migration

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
    # A malformed name is a bad argument (exit 2), a taken one a migration problem (exit 4).
    with pytest.raises(MigrationError if name == "init" else ValidationError, match="--name"):
        capture.capture(migrated_db.target(), migrations, name)
    assert len(all_steps(migrations, migrated_db.target().chains)) == count


def test_pending_migrations_are_refused(empty_db: DbFixture, migrations: Path) -> None:
    with pytest.raises(MigrationError, match=r"--from-drift.*deploy"):
        capture.capture(empty_db.target(), migrations, "too_early")


@pytest.mark.parametrize("topology", ["shared", "per-service"])
def test_status_reports_drift_with_pending_migrations(
        topology: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if topology == "shared":
        db: DbFixture = request.getfixturevalue("migrated_db")
        auth, url = db.target(), db.url
    else:  # databases of this test alone: it changes one by hand
        stores = request.getfixturevalue("private_stores")
        auth = next(t for t in resolve_targets(stores.settings()) if "auth" in t.chains)
        url = stores.url("auth")
    # One migration more in the files than in the databases: it is pending.
    folder = copy_with(tmp_path, {"auth/20261202000000_later": migration("pass")})
    clean = status.status(auth, folder)
    assert [s.label for s in clean.pending] == ["auth:20261202000000_later"]
    assert clean.drift_checked and clean.drift == []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    drifted = status.status(auth, folder)
    assert drifted.pending == clean.pending and not drifted.up_to_date
    assert drifted.drift == ["column users.nickname: in the database, not made by the migrations"]


def test_what_an_extension_made_is_no_drift(migrated_db: DbFixture, tmp_path: Path) -> None:
    # `shared-db stats` installs pg_stat_statements: its views and functions are the
    # extension's, not a change made by hand.
    folder = copy_with(tmp_path, {"auth/20261202000000_later": migration("pass")})
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    found = status.status(migrated_db.target(), folder)
    assert found.drift_checked and found.drift == []
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("CREATE VIEW by_hand AS SELECT 1 AS one")
    assert status.status(migrated_db.target(), folder).drift == [
        "view by_hand: in the database, not made by the migrations"]


def test_status_with_nothing_applied_compares_nothing(empty_db: DbFixture) -> None:
    result = status.status(empty_db.target(), PACKAGE_MIGRATIONS)
    assert not result.drift_checked and result.drift == []


def test_status_without_createdb_leaves_drift_unchecked(migrated_db: DbFixture,
                                                        tmp_path: Path) -> None:
    role = f"sdb_nocreatedb_{secrets.token_hex(4)}"
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
            sql.Identifier(role)))
    try:
        folder = copy_with(tmp_path, {"auth/20261202000000_later": migration("pass")})
        url = migrated_db.url.replace("postgres@", f"{role}@", 1)
        (target,) = resolve_targets(load_settings({"DATABASE_URL": url}))
        result = status.status(target, folder)
        assert len(result.pending) == 1 and not result.drift_checked
    finally:
        with psycopg.connect(migrated_db.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

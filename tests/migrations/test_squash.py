"""``migrate squash``: one migration for new databases in place of a chain's history up to a
revision; databases at or past it go on; up and down round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.errors import MigrationError, ValidationError
from shared_db.ops import migrate, squash, status
from shared_db.ops.history import all_steps, chain_steps
from shared_db.ops.lint import lint_steps
from shared_db.ops.offline import step_sql
from shared_db.ops.targets import resolve_targets
from tests.catalog import snapshot
from tests.conftest import DbFixture
from tests.migrations.extra import copy_with, migration


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_squash_builds_the_same_schema_and_rolls_back(
        migrated_db: DbFixture, empty_db: DbFixture, migrations: Path) -> None:
    nothing = snapshot(empty_db.url)
    done = squash.squash(migrations, "auth", "20261201000000")
    assert done.replaces == ("20260101000000", "20260103000000", "20261201000000")
    (step,) = chain_steps(migrations, "auth")
    assert step.replaces == done.replaces and step.down_revision is None
    # Its SQL renders offline like any migration's, and lints clean.
    (lint,) = lint_steps(migrations, ("auth",), only={step})
    assert lint.open == [] and "CREATE TABLE users" in step_sql(migrations, step)
    # A database already at the squashed revision is up to date with the new history.
    assert status.status(migrated_db.target(), migrations).up_to_date
    # A new database gets the same schema from the squash, and all of it back off.
    migrate.deploy(empty_db.target(), migrations)
    assert snapshot(empty_db.url) == snapshot(migrated_db.url)
    migrate.down([empty_db.target()], migrations, "base")
    assert snapshot(empty_db.url) == nothing
    migrate.deploy(empty_db.target(), migrations)
    assert snapshot(empty_db.url) == snapshot(migrated_db.url)


def test_a_database_past_the_squash_continues(migrated_db: DbFixture, tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"auth/20261202000000_later": migration(
        'op.execute("CREATE TABLE later (id int)")', 'op.execute("DROP TABLE later")')})
    squash.squash(folder, "auth", "auth:20260103000000")
    assert [s.revision for s in chain_steps(folder, "auth")] == [
        "20260103000000", "20261201000000", "20261202000000"]
    assert [s.label for s in migrate.deploy(migrated_db.target(), folder).steps] == [
        "auth:20261202000000_later"]


@pytest.mark.parametrize(("chain", "to", "expected"), [
    ("nope", "20261201000000", "--chain: choose a service chain: .*, got 'nope'"),
    ("links", "20260103000001", "--chain: choose a service chain: .*, got 'links'"),
    ("auth", "20990101000000", "--to: unknown migration"),
    ("auth", "20260101000000", "nothing to squash"),
])
def test_bad_chain_or_revision_changes_nothing(migrations: Path, chain: str, to: str,
                                               expected: str) -> None:
    before = sorted(p.name for p in migrations.rglob("*.py"))
    with pytest.raises((MigrationError, ValidationError), match=expected):
        squash.squash(migrations, chain, to)
    assert sorted(p.name for p in migrations.rglob("*.py")) == before


def test_squash_of_a_squash_is_refused(migrations: Path) -> None:
    squash.squash(migrations, "auth", "20260103000000")
    with pytest.raises(MigrationError, match="includes a squash"):
        squash.squash(migrations, "auth", "20261201000000")
    assert len(all_steps(migrations, ("auth",))) == 2


def test_per_service_database_goes_on_after_the_squash(private_stores, tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {})
    squash.squash(folder, "auth", "20261201000000")
    targets = resolve_targets(private_stores.settings())
    assert all(status.status(t, folder).pending == [] for t in targets)
    assert migrate.deploy(next(t for t in targets if "auth" in t.chains), folder).steps == []


@pytest.mark.parametrize("value", ["'20260101000000'", "('20260101000000', 3)", "tuple()"])
def test_a_replaces_that_is_not_a_literal_tuple_of_ids_is_refused(migrations: Path,
                                                                 value: str) -> None:
    squashed = squash.squash(migrations, "auth", "20260103000000").path
    squashed.write_text(squashed.read_text().replace(
        "replaces = ('20260101000000', '20260103000000')", f"replaces = {value}"))
    with pytest.raises(MigrationError, match=f"{squashed.name}: replaces must be"):
        chain_steps(migrations, "auth")

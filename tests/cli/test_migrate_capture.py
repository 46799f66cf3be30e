"""``shared-db migrate dev --from-drift``: output, exit codes, refusals (shared topology only:
``migrate dev`` writes migrations from one database)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.ops.history import all_steps
from tests.conftest import DbFixture
from tests.migrations.extra import migration


@pytest.fixture
def folder(tmp_path: Path, migrated_db: DbFixture, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    monkeypatch.setenv("SHARED_DB_MIGRATIONS_DIR", str(copy))
    monkeypatch.delenv("SHARED_DB_TOPOLOGY", raising=False)
    return copy


def test_from_drift_writes_prints_and_stamps(folder: Path, migrated_db: DbFixture,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    assert main(["migrate", "dev", "--from-drift", "--name", "nickname"]) == 0
    out = capsys.readouterr().out
    assert "Created" in out and "ADD COLUMN nickname" in out and "as applied" in out
    assert main(["migrate", "dev", "--from-drift", "--name", "again"]) == 0
    assert "no migration was created" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "expected", "code"), [
    (["--name", "Bad Name"], "--name: use lower-case letters", 2),
    (["--name", "init"], "--name 'init' is already used", 4),
    (["--name", "x", "--create-only"], "--from-drift, --create-only: choose one", 2),
])
def test_hostile_input_exits_writing_nothing(folder: Path, migrated_db: DbFixture,
                                             capsys: pytest.CaptureFixture[str],
                                             args: list[str], expected: str, code: int) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    count = len(all_steps(folder, ("auth",)))
    assert main(["migrate", "dev", "--from-drift", *args]) == code
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(all_steps(folder, ("auth",))) == count


def test_status_prints_drift_beside_pending(folder: Path, migrated_db: DbFixture,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "versions/auth/20261202000000_later.py").write_text(
        migration("pass"))
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    assert main(["migrate", "status"]) == 1
    out = capsys.readouterr().out
    assert "1 pending migration(s)" in out
    assert "drift between the database and its applied migrations" in out
    assert "column users.nickname" in out
    assert main(["doctor"]) == 1
    assert "--from-drift" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "expected", "code"), [
    (["--chain", "auth", "--to", "20261201000000"], "replacing 3 migration(s)", 0),
    (["--chain", "nope", "--to", "20261201000000"], "--chain: choose a service chain", 2),
    (["--chain", "auth", "--to", "bad rev"], "--to: unknown migration", 4),
])
def test_squash_cli(folder: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                    expected: str, code: int) -> None:
    assert main(["migrate", "squash", *args]) == code
    captured = capsys.readouterr()
    assert expected in captured.out + captured.err and "Traceback" not in captured.err

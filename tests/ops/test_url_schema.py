"""A database whose tables live in the URL's ``schema`` (the guide's Prisma parameter), not public:
every command reads and writes there."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from tests.conftest import DbFixture


def _rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        found = conn.execute(f"SELECT count(*) FROM tenant.{table}").fetchone()
    return int(found[0]) if found else 0


def test_status_seed_backup_and_restore_in_the_urls_schema(
        empty_db: DbFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA tenant")
    monkeypatch.setenv("DATABASE_URL", f"{empty_db.url}?schema=tenant")
    assert main(["migrate", "deploy"]) == 0
    assert main(["migrate", "status", "--json"]) == 0  # the version tables are in tenant
    capsys.readouterr()
    assert main(["migrate", "status", "--json"]) == 0  # and again, from what it remembered
    status = json.loads(capsys.readouterr().out)
    assert status["up_to_date"] is True and status["targets"][0]["applied"]
    assert main(["db", "seed"]) == 0
    users = _rows(empty_db.url, "users")
    assert users == 3
    capsys.readouterr()
    assert main(["backup", "--dir", str(tmp_path), "--verify", "--json"]) == 0
    backup = json.loads(capsys.readouterr().out)
    assert backup["verified"] is True and backup["manifest"]["schema"] == "tenant"
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("DELETE FROM tenant.user_profiles")
    assert main(["restore", backup["file"], "--force"]) == 0
    assert _rows(empty_db.url, "users") == users and _rows(empty_db.url, "user_profiles") == 3


def test_a_url_without_schema_restores_only_a_backup_of_public(
        empty_db: DbFixture, migrated_db: DbFixture, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA tenant")
    monkeypatch.setenv("DATABASE_URL", f"{empty_db.url}?schema=tenant")
    assert main(["migrate", "deploy"]) == 0
    capsys.readouterr()
    assert main(["backup", "--dir", str(tmp_path), "--json"]) == 0
    backup = json.loads(capsys.readouterr().out)
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)  # no schema=: its tables are in public
    assert main(["restore", backup["file"], "--force"]) == 6
    err = capsys.readouterr().err
    assert "backup of schema tenant" in err and "URL's schema is public" in err
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant'"
                            ).fetchone() == (0,)

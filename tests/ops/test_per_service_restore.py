"""Restore in the per-service topology: one service's database at a time (``--service``), and
only from a backup of a database carrying the same chains, so a service's backup never empties
the shared database of the other services' tables, nor a shared backup a service's."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.services import SERVICES
from tests.conftest import DbFixture
from tests.ops.test_per_service_migrations import service_urls as service_urls


def _per_service(monkeypatch: pytest.MonkeyPatch, urls: dict[str, str]) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SHARED_DB_TOPOLOGY", "per-service")
    for service, url in urls.items():
        monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)


def _users(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(e) for (e,) in conn.execute("SELECT email FROM users ORDER BY email")]


def test_a_service_backup_restores_into_that_service_only(
        service_urls: dict[str, str], migrated_db: DbFixture,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    _per_service(monkeypatch, service_urls)
    assert main(["migrate", "deploy"]) == 0
    with psycopg.connect(service_urls["auth"], autocommit=True) as conn:
        conn.execute("INSERT INTO users (email, password_hash, name, role) VALUES "
                     "('kept@example.com', 'x', 'Kept', 'CUSTOMER')")
    capsys.readouterr()
    assert main(["backup", "--dir", str(tmp_path), "--json"]) == 0
    made = {Path(d["file"]).parent.name: d["file"]
            for d in json.loads(capsys.readouterr().out)["backups"]}
    assert sorted(made) == sorted(SERVICES)
    with psycopg.connect(service_urls["auth"], autocommit=True) as conn:
        conn.execute("DELETE FROM users")

    assert main(["restore", made["auth"], "--force"]) == 2  # which database?
    assert "--service" in capsys.readouterr().err
    assert main(["restore", made["auth"], "--force", "--service", "billing"]) == 2
    assert "must be one of auth, admin, profile, payments" in capsys.readouterr().err
    assert main(["restore", made["auth"], "--force", "--service", "payments"]) == 6
    assert "nothing was restored" in capsys.readouterr().err
    assert main(["restore", made["auth"], "--force", "--service", "auth"]) == 0
    assert _users(service_urls["auth"]) == ["kept@example.com"]

    monkeypatch.setenv("SHARED_DB_TOPOLOGY", "shared")
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    assert main(["restore", made["auth"], "--force", "--service", "auth"]) == 2
    capsys.readouterr()
    assert main(["restore", made["auth"], "--force"]) == 6  # would drop every other table
    assert "carrying the auth chain(s)" in capsys.readouterr().err
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT to_regclass('payments')").fetchone() == ("payments",)
    assert main(["backup", "--dir", str(tmp_path / "shared"), "--json"]) == 0
    shared = json.loads(capsys.readouterr().out)["file"]
    _per_service(monkeypatch, service_urls)
    assert main(["restore", shared, "--force", "--service", "auth"]) == 6
    assert _users(service_urls["auth"]) == ["kept@example.com"]

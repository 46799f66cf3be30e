"""``shared-db doctor``: each known problem is recognised and comes with its fix."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.config import PACKAGE_MIGRATIONS, load_settings
from shared_db.ops.doctor import diagnose
from shared_db.ops.targets import resolve_targets
from tests.conftest import DbFixture


def _run(url: str, **env: str):
    settings = load_settings({"DATABASE_URL": url, **env})
    return {c.name: c for c in diagnose(settings, resolve_targets(settings))}


def test_healthy_database(migrated_db: DbFixture) -> None:
    checks = _run(migrated_db.url)
    assert {n: c.status for n, c in checks.items() if n != "extensions"} == {
        "pool settings": "ok", "server": "ok", "two-phase commit": "ok", "models": "ok",
        "migrations": "ok"}
    assert "PostgreSQL" in checks["server"].detail
    assert checks["extensions"].status in ("ok", "warn")


def test_password_is_hidden(migrated_db: DbFixture) -> None:
    url = migrated_db.url.replace("postgres@", "postgres:hunter2@")
    checks = _run(url + "?connection_limit=3")
    assert "hunter2" not in str(checks) and "pool size 3" in checks["pool settings"].detail


def test_empty_database_reports_missing_models_and_pending(empty_db: DbFixture) -> None:
    checks = _run(empty_db.url)
    assert checks["models"].status == "fail" and "users" in checks["models"].detail
    assert checks["models"].fix == "run `shared-db migrate deploy`"
    assert checks["migrations"].status == "warn" and "6 pending" in checks["migrations"].detail


def test_drift(migrated_db: DbFixture) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("DROP INDEX audit_logs_action_idx")
    check = _run(migrated_db.url)["migrations"]
    assert check.status == "fail" and "audit_logs_action_idx" in check.detail


def test_migration_conflict(migrated_db: DbFixture, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, folder)
    source = (folder / "versions/auth/20260103000000_add_sessions.py").read_text()
    (folder / "versions/auth/20260104000000_rival.py").write_text(
        source.replace('revision: str = "20260103000000"', 'revision: str = "20260104000000"'))
    check = _run(migrated_db.url, SHARED_DB_MIGRATIONS_DIR=str(folder))["migrations"]
    assert check.status == "fail" and "migration conflict in chain 'auth'" in check.detail
    assert "guide 12.1, migration conflicts" in (check.fix or "")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_connection_timeout_is_recognised(silent_server: int) -> None:
    checks = _run(f"postgresql://postgres@127.0.0.1:{silent_server}/app?connect_timeout=2")
    check = checks["connection"]
    assert check.status == "fail" and "timeout" in check.detail
    assert "raise connect_timeout" in (check.fix or "")


def test_cli_exit_codes_and_json(migrated_db: DbFixture, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    assert main(["doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in doc["checks"]} >= {"server", "migrations", "models"}
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@127.0.0.1:1/app?bogus=1")
    assert main(["doctor", "--json"]) == 1
    (check,) = json.loads(capsys.readouterr().out)["checks"]
    assert check["status"] == "fail" and "bogus" in check["name"]

"""A deploy killed mid-migration, or a server killed under it: status tells the truth afterwards
and the next deploy completes (each migration is one transaction)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from shared_db import devserver
from shared_db.cli import main
from shared_db.config import PACKAGE_MIGRATIONS, load_settings
from shared_db.ops import migrate
from shared_db.ops.targets import resolve_targets
from tests.catalog import snapshot
from tests.conftest import DbFixture

SLOW = '''"""slow: a table, then a wait long enough to be interrupted.

Chain: admin
Revision: 20261202000000
Revises: 20261201000000
"""

from alembic import op

revision = "20261202000000"
down_revision = "20261201000000"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE half_done (id int)")
    op.execute("SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM system_config "
               "WHERE key = 'slow') THEN 60 ELSE 0 END)")


def downgrade() -> None:
    op.execute("DROP TABLE half_done")
'''


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions/admin/20261202000000_slow.py").write_text(SLOW)
    return folder


def _wait_for_sleep(url: str) -> None:
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            found = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%' "
                "AND state = 'active' AND pid <> pg_backend_pid()").fetchone()
            if found:
                return
            time.sleep(0.1)
    raise AssertionError("the migration never started")


def _status(url: str, migrations: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SHARED_DB_MIGRATIONS_DIR", str(migrations))
    return main(["migrate", "status", "--json"])


def test_deploy_killed_mid_migration(migrated_db: DbFixture, migrations: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('slow', 'true')")
    env = {**os.environ, "DATABASE_URL": migrated_db.url,
           "SHARED_DB_MIGRATIONS_DIR": str(migrations)}
    deploy = subprocess.Popen([sys.executable, "-m", "shared_db", "migrate", "deploy"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_sleep(migrated_db.url)
    deploy.send_signal(signal.SIGKILL)
    deploy.wait(10)
    assert _status(migrated_db.url, migrations, monkeypatch) == 1
    assert "admin:20261202000000_slow" in capsys.readouterr().out  # pending, truthfully
    assert "half_done" not in snapshot(migrated_db.url)["tables"]  # rolled back
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("DELETE FROM system_config WHERE key = 'slow'")
    started = time.monotonic()
    assert main(["migrate", "deploy"]) == 0  # the dead deploy's lock is gone within a second
    assert time.monotonic() - started < 30
    assert "half_done" in snapshot(migrated_db.url)["tables"]
    assert _status(migrated_db.url, migrations, monkeypatch) == 0


def _crash(home: Path) -> None:
    """Kill the server and all its processes at once, like a power cut."""
    pid = int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    server = psutil.Process(pid)
    children = server.children(recursive=True)
    server.kill()
    for process in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs([server, *children], timeout=10)


def test_server_killed_mid_migration(tmp_path: Path, migrations: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    home = tmp_path / "server"
    url = devserver.start(home)
    try:
        settings = load_settings({"DATABASE_URL": url, "SHARED_DB_MIGRATIONS_DIR": str(migrations)})
        target = resolve_targets(settings)[0]
        assert len(migrate.deploy(target, migrations, limit=10).steps) == 10
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO system_config (key, value) VALUES ('slow', 'true')")
        env = {**os.environ, "DATABASE_URL": url, "SHARED_DB_MIGRATIONS_DIR": str(migrations)}
        deploy = subprocess.Popen([sys.executable, "-m", "shared_db", "migrate", "deploy"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        _wait_for_sleep(url)
        _crash(home)
        _, error = deploy.communicate(timeout=60)
        assert deploy.returncode != 0 and "Traceback" not in error, error
        assert error.startswith("error: ") and len(error.strip().splitlines()) == 1, error
        assert devserver.start(home) == url  # crash recovery, same data and port
        assert _status(url, migrations, monkeypatch) == 1
        doc = capsys.readouterr().out
        assert "admin:20261202000000_slow" in doc and "half_done" not in snapshot(url)["tables"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM system_config WHERE key = 'slow'")
        assert [s.label for s in migrate.deploy(target, migrations).steps] == [
            "admin:20261202000000_slow"]
    finally:
        devserver.stop(home)

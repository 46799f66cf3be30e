"""The ``shared-db migrate`` commands: wiring, output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from shared_db.cli import main
from tests.catalog import snapshot
from tests.conftest import DbFixture


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch):
    def point_at(db: DbFixture) -> None:
        monkeypatch.setenv("DATABASE_URL", db.url)
    return point_at


def cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared_db", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def test_deploy_then_status_exit_codes(empty_db: DbFixture, use, capsys) -> None:
    use(empty_db)
    assert main(["migrate", "status"]) == 1
    assert "10 pending migration(s)" in capsys.readouterr().out
    assert main(["migrate", "deploy"]) == 0
    assert "10 migration(s) applied." in capsys.readouterr().out
    assert main(["migrate", "deploy"]) == 0
    assert "No pending migrations." in capsys.readouterr().out
    assert main(["migrate", "status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["up_to_date"] is True and len(doc["targets"][0]["applied"]) == 10


def test_status_json_reports_drift(migrated_db: DbFixture, use, capsys) -> None:
    use(migrated_db)
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("DROP INDEX users_role_idx")
    assert main(["migrate", "status", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["targets"][0]["drift"] == [
        "auth: add_index users_role_idx (in the models, not in the database)"]


def test_down_and_down_to(migrated_db: DbFixture, use, capsys) -> None:
    use(migrated_db)
    assert main(["migrate", "down"]) == 0
    assert "rolled back payments:20261201000000_add_idempotency_keys" in capsys.readouterr().err
    assert main(["migrate", "down", "--to", "20260102000000_add_payments"]) == 0
    assert "sessions" not in snapshot(migrated_db.url)["tables"]
    assert main(["migrate", "down", "--to", "20260101000000"]) == 4
    assert "ambiguous" in capsys.readouterr().err


def test_reset_refuses_without_terminal_or_force(migrated_db: DbFixture) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('keep', '1')")
    result = cli("migrate", "reset", env=migrated_db.env(), stdin="y\n")
    assert result.returncode == 5
    assert "pass --force" in result.stderr and "Traceback" not in result.stderr
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT count(*) FROM system_config").fetchone() == (1,)


def test_reset_force_rebuilds_and_seeds(migrated_db: DbFixture, use, capsys) -> None:
    use(migrated_db)
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('gone', '1')")
    assert main(["migrate", "reset", "--force"]) == 0
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT count(*) FROM system_config").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
    assert main(["migrate", "status"]) == 0


@pytest.mark.parametrize(("args", "url", "code", "message"), [
    (["migrate", "status"], "postgresql://nobody@127.0.0.1:1/app", 3, "cannot connect to"),
    (["migrate", "deploy"], "http://localhost/app", 2, "DATABASE_URL: must start with"),
    (["migrate", "deploy"], "postgresql://localhost/app?pool_size=3", 2,
     "parameter 'pool_size': is not accepted"),
    (["migrate", "deploy"], "postgresql://localhost/app?connection_limit=zero", 2,
     "connection_limit: must be a positive int"),
    (["migrate", "down", "--to", "20990101000000"], None, 4, "unknown migration"),
    (["migrate", "dev", "--name", "add_sessions"], None, 4,
     "already used by auth:20260103000000_add_sessions"),
])
def test_bad_input_is_one_line_and_non_zero(migrated_db: DbFixture, args: list[str],
                                            url: str | None, code: int, message: str) -> None:
    env = {**migrated_db.env(), **({"DATABASE_URL": url} if url else {})}
    before = snapshot(migrated_db.url)
    result = cli(*args, env=env)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert snapshot(migrated_db.url) == before


def test_concurrent_deploys_apply_each_migration_once(empty_db: DbFixture) -> None:
    command = [sys.executable, "-m", "shared_db", "migrate", "deploy"]
    env = {**os.environ, "DATABASE_URL": empty_db.url}
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(out.strip() for out, _ in outputs) == [
        "10 migration(s) applied.", "No pending migrations."]
    applied = [err.count("applied ") for _, err in outputs]
    assert sorted(applied) == [0, 10]

"""A ``CREATE INDEX CONCURRENTLY`` migration runs outside a transaction; its backend killed
mid-build leaves an invalid index, which the next deploy finds, drops and builds again."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.ops.lint import lint_steps
from shared_db.services import SERVICES
from tests.conftest import DbFixture
from tests.migrations.extra import copy_with, migration

BUILD = """with op.get_context().autocommit_block():
    op.create_index("system_config_slow_idx", "system_config", [sa.text("test_slow(key)")],
                    postgresql_concurrently=True, if_not_exists=True)"""
DROP = """with op.get_context().autocommit_block():
    op.drop_index("system_config_slow_idx", table_name="system_config",
                  postgresql_concurrently=True, if_exists=True)"""
# Declared immutable so it may index; it sleeps while the 'slow' row exists, so the build can
# be caught half-way (index builds run it with search_path pg_catalog: the schema is named).
SLOW_FUNCTION = """
CREATE FUNCTION test_slow(k text) RETURNS text IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM public.system_config WHERE key = 'slow')
                   THEN 60 ELSE 0 END);
  RETURN k;
END $$"""
VALIDITY = """SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname = 'system_config_slow_idx'"""


def _wait_for_build(conn: psycopg.Connection) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Not merely started: until its first phase commits the index's catalog entry, a kill
        # leaves no invalid index behind (a slow machine showed that window).
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query "
                           "LIKE 'CREATE INDEX CONCURRENTLY%' AND EXISTS (SELECT 1 FROM "
                           "pg_class WHERE relname = 'system_config_slow_idx')").fetchone()
        if row:
            return int(row[0])
        time.sleep(0.1)
    raise AssertionError("the index build never started")


def _topology(url: str, topology: str) -> dict[str, str]:
    if topology == "shared":
        return {"DATABASE_URL": url}
    # Each service's target carries its own chain only; one database can hold all four.
    return {"SHARED_DB_TOPOLOGY": "per-service",
            **{f"{s.upper()}_DATABASE_URL": url for s in SERVICES}}


@pytest.mark.parametrize("topology", ["shared", "per-service"])
def test_killed_concurrent_build_is_rebuilt_by_the_next_deploy(
        migrated_db: DbFixture, tmp_path: Path, monkeypatch, capsys, topology: str) -> None:
    chosen = _topology(migrated_db.url, topology)
    folder = copy_with(tmp_path, {"admin/20261202000000_slow_idx": migration(BUILD, DROP)})
    (lint,) = [x for x in lint_steps(folder, ("admin",)) if x.step.revision == "20261202000000"]
    assert lint.non_transactional and lint.concurrent_indexes == ["system_config_slow_idx"]
    assert lint.findings == []  # CONCURRENTLY is the safe recipe
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(SLOW_FUNCTION)
        conn.execute("INSERT INTO system_config (key, value) VALUES ('slow', 'true')")
        env = {**migrated_db.env(), **chosen, "SHARED_DB_MIGRATIONS_DIR": str(folder)}
        deploy = subprocess.Popen([sys.executable, "-m", "shared_db", "migrate", "deploy"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        backend = _wait_for_build(conn)
        conn.execute("SELECT pg_terminate_backend(%s)", [backend])
        _, error = deploy.communicate(timeout=60)
        assert deploy.returncode != 0 and "Traceback" not in error, error
        assert error.strip().splitlines()[-1].startswith("error: could not apply admin:"), error
        assert conn.execute(VALIDITY).fetchone() == (False,)  # left invalid by the kill
        assert conn.execute("SELECT version_num FROM alembic_version_admin").fetchone() == (
            "20261201000000",)
        conn.execute("DELETE FROM system_config WHERE key = 'slow'")
        for name, value in chosen.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SHARED_DB_MIGRATIONS_DIR", str(folder))
        assert main(["migrate", "deploy"]) == 0
        err = capsys.readouterr().err
        assert "dropped invalid index public.system_config_slow_idx" in err, err
        assert conn.execute(VALIDITY).fetchone() == (True,)
        assert conn.execute("SELECT version_num FROM alembic_version_admin").fetchone() == (
            "20261202000000",)
        # Its downgrade runs outside a transaction too.
        assert main(["migrate", "down"]) == 0
        assert conn.execute(VALIDITY).fetchone() is None


PAUSE_FUNCTION = """
CREATE FUNCTION test_slow(k text) RETURNS text IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.3); RETURN k; END $$"""


def test_concurrent_deploys_of_a_concurrent_build_both_succeed(migrated_db: DbFixture,
                                                               tmp_path: Path) -> None:
    """The deploy waiting for the migration lock must not hold a snapshot the build waits for."""
    folder = copy_with(tmp_path, {"admin/20261202000000_slow_idx": migration(BUILD, DROP)})
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(PAUSE_FUNCTION)
        conn.execute("INSERT INTO system_config (key, value) VALUES ('a', '1'), ('b', '1')")
    env = {**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    procs = [subprocess.Popen([sys.executable, "-m", "shared_db", "migrate", "deploy"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(out.strip() for out, _ in outputs) == [
        "1 migration(s) applied.", "No pending migrations."]
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute(VALIDITY).fetchone() == (True,)


def test_a_checked_step_outside_a_transaction_runs_once_its_tables_prove_empty(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    """The row check's reads must not leave a transaction open for the autocommit block."""
    body = 'op.execute("ALTER TABLE system_config DROP COLUMN updated_by")\n' + BUILD
    folder = copy_with(tmp_path, {"admin/20261202000000_slow_idx": migration(body, DROP)})
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(PAUSE_FUNCTION)
    env = {**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    result = subprocess.run([sys.executable, "-m", "shared_db", "migrate", "deploy"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute(VALIDITY).fetchone() == (True,)

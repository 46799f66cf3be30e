"""What the commands people run most load: ``--help`` neither the pools nor SQLAlchemy, the
error and record types not the pools, and a repeated ``migrate status`` on an unchanged schema
neither SQLAlchemy, Alembic nor a model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.conftest import DbFixture

HEAVY = ("sqlalchemy", "sqlalchemy.ext.asyncio", "psycopg_pool", "alembic", "shared_db.models")
POOLS = ("sqlalchemy.ext.asyncio", "psycopg_pool")

# The child names what it loaded once the command has exited (the CLI ends in SystemExit).
_PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps([m for m in {heavy!r} if m in sys.modules]),
                              file=sys.stderr))
sys.argv = ["shared-db", *{args!r}]
from shared_db.cli import run
run()
"""


def _loaded(args: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY, args=args)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stderr.strip().splitlines()[-1]), done.stdout


def test_help_and_the_error_types_load_neither_pools_nor_sqlalchemy() -> None:
    code, loaded, _ = _loaded(["--help"], dict(os.environ))
    assert code == 0 and loaded == []
    done = subprocess.run([sys.executable, "-c", "import sys, shared_db.errors, shared_db.records;"
                           f"print([m for m in {POOLS!r} if m in sys.modules])"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_status_on_an_unchanged_schema_skips_the_full_comparison(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": migrated_db.url, "SHARED_DB_CACHE_DIR": str(tmp_path)}
    code, loaded, out = _loaded(["migrate", "status"], env)
    assert code == 0 and "no drift" in out and "sqlalchemy" in loaded  # compared in full
    assert len(list((tmp_path / "drift").iterdir())) == 1
    code, loaded, out = _loaded(["migrate", "status"], env)
    assert code == 0 and "no drift" in out and set(loaded) <= {"psycopg_pool"}
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    code, loaded, out = _loaded(["migrate", "status"], env)
    assert code == 1 and "remove_column users nickname" in out and "sqlalchemy" in loaded


def test_migrate_sql_from_a_revision_starts_no_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SHARED_DB_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, "-m", "shared_db", "migrate", "sql", "--from", "base",
                           "--to", "auth:20260101000000"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "CREATE TABLE users" in done.stdout
    assert not (tmp_path / "home" / "pgdata").exists()  # nothing was started or initialised


def test_a_report_title_is_never_wrapped_at_its_table_s_width() -> None:
    import io

    from rich.console import Console

    from shared_db.cli.render import status_table
    from shared_db.ops.status import TargetStatus

    url = "postgresql://postgres@127.0.0.1:5432/" + "a_rather_long_database_name_" * 3
    out = io.StringIO()
    Console(file=out, width=240).print(status_table(TargetStatus("payments", url)))
    assert out.getvalue().splitlines()[0] == f"Migrations: payments ({url})"

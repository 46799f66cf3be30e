"""Commands whose session state spans transactions refuse a URL through PgBouncer before
sending anything: in transaction pooling the migration lock, a scratch database's lock and
pg_dump's session settings would stay on a server connection other clients get, and the lock
would not even exclude a second deploy."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.config import PACKAGE_MIGRATIONS


@pytest.mark.parametrize("args", [
    ["migrate", "deploy"], ["migrate", "down"], ["migrate", "baseline"],
    ["migrate", "dev", "--name", "pooled_change"], ["migrate", "dev", "--from-drift",
                                                    "--name", "pooled_drift"],
    ["migrate", "resolve", "--applied", "auth:20260101000000"],
    ["backup", "--verify"], ["backup", "--format", "sql.gz"], ["restore", "x.dump", "--force"],
])
def test_commands_holding_session_state_refuse_pgbouncer(
        bounced: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    direct, pooled = bounced
    monkeypatch.setenv("DATABASE_URL", pooled)
    shutil.copytree(PACKAGE_MIGRATIONS, tmp_path / "migrations")  # dev may write only there
    monkeypatch.setenv("SHARED_DB_MIGRATIONS_DIR", str(tmp_path / "migrations"))
    monkeypatch.chdir(tmp_path)
    code = main([*args, *(["--dir", str(tmp_path / "backups")] if args[0] == "backup" else [])])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "DATABASE_URL" in err and "not one through PgBouncer" in err
    assert "nothing was changed" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "backups").exists() or not list((tmp_path / "backups").iterdir())
    with psycopg.connect(direct) as conn:
        held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert held.fetchone() == (0,)

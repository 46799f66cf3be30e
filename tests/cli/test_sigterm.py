"""A SIGTERM (a cancelled deploy pipeline, a stopped container) undoes what the command had
started, as Ctrl-C does, and exits 143 without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg

from tests.conftest import DbFixture


def _waiting_pg_dump(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
            "AND wait_event_type = 'Lock'").fetchone()[0])  # type: ignore[index]


def test_a_terminated_backup_keeps_nothing_and_ends_pg_dump(migrated_db: DbFixture,
                                                            tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": migrated_db.url}
    with psycopg.connect(migrated_db.url) as holder:  # pg_dump waits for this lock
        holder.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        backup = subprocess.Popen([sys.executable, "-m", "shared_db", "backup", "--dir",
                                   str(tmp_path)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not _waiting_pg_dump(migrated_db.url):
            assert time.monotonic() < deadline and backup.poll() is None
            time.sleep(0.1)
        assert [p.name for p in tmp_path.iterdir()] != []  # its .partial and its claim
        (pg_dump,) = psutil.Process(backup.pid).children()
        backup.send_signal(signal.SIGTERM)
        _, err = backup.communicate(timeout=60)
        # Ended while waiting for the lock: its server session lingers until the lock is
        # granted (a waiting backend reads nothing from the client), the process does not.
        assert not pg_dump.is_running()
        holder.rollback()
    assert backup.returncode == 143, err
    assert "Terminated." in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_sigterm_at_any_moment_of_a_seed_is_one_line_and_all_or_nothing(
        migrated_db: DbFixture) -> None:
    env = {**os.environ, "DATABASE_URL": migrated_db.url}
    for delay in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8):
        with psycopg.connect(migrated_db.url, autocommit=True) as conn:
            conn.execute("TRUNCATE users CASCADE")
        seed = subprocess.Popen([sys.executable, "-m", "shared_db", "db", "seed"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        seed.send_signal(signal.SIGTERM)
        _, err = seed.communicate(timeout=60)
        # -SIGTERM: it had finished and was shutting down when the signal came
        assert seed.returncode in (0, 143, -signal.SIGTERM), err
        assert "Traceback" not in err, err
        if seed.returncode == 143:
            assert err.strip().splitlines()[-1] == "Terminated.", err
        with psycopg.connect(migrated_db.url) as conn:
            counts = conn.execute("SELECT (SELECT count(*) FROM users), "
                                  "(SELECT count(*) FROM user_profiles)").fetchone()
        assert counts in ((0, 0), (3, 3)), (delay, counts)

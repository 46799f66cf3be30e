"""Scratch databases (shadow, capture, baseline, restore checks) outlive no process: one left by
a killed process is dropped by the next made for the same database, and one in use never is."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psycopg

from shared_db.ops.scratch import scratch_database
from tests.conftest import DbFixture

KILLED = textwrap.dedent("""
    import os, sys
    from shared_db.url import parse_database_url
    from shared_db.ops.scratch import scratch_database
    with scratch_database(parse_database_url(sys.argv[1]), "shadow") as scratch:
        print(scratch.database, flush=True)
        os._exit(9)  # as kill -9 would: no finally runs
""")


def _databases(db: DbFixture) -> set[str]:
    with psycopg.connect(db.url, autocommit=True) as conn:
        return {n for (n,) in conn.execute("SELECT datname FROM pg_database")}


def test_a_killed_process_s_scratch_database_goes_with_the_next_one(
        migrated_db: DbFixture) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED, migrated_db.url], capture_output=True,
                          text=True, timeout=60)
    left = done.stdout.strip()
    assert done.returncode == 9 and left.startswith(migrated_db.connection.database[:30]), done
    assert left in _databases(migrated_db)
    with scratch_database(migrated_db.connection, "shadow") as first:
        assert left not in _databases(migrated_db)
        # one in use (its maker alive, holding its lock) is left alone by another
        with scratch_database(migrated_db.connection, "capture") as second:
            assert {first.database, second.database} <= _databases(migrated_db)
        assert second.database not in _databases(migrated_db)
    assert first.database not in _databases(migrated_db)

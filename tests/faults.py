"""Servers a test may restart or crash (``bench.faults.Server``).

With ``DATABASE_URL`` unset, a private embedded server of the test's own. With it set (CI, the
server at 127.0.0.1:5432) that server itself, through Debian's ``pg_ctlcluster``, when this
process may control it (root); otherwise the test is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.faults import Server, server_for, system_cluster, wait_for
from shared_db import devserver
from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.ops import migrate
from shared_db.ops.chains import CHAINS
from shared_db.ops.scratch import create_database
from shared_db.ops.targets import Target
from shared_db.url import parse_database_url


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Server]:
    """A server to restart and crash; its URL names its ``postgres`` database."""
    url = os.environ.get("DATABASE_URL")
    if url and system_cluster(parse_database_url(url)) is None:
        pytest.skip("restarting the DATABASE_URL server needs root and Debian's pg_ctlcluster")
    server = server_for(url or None, tmp_path / "server")
    yield server
    if server.home is not None:
        devserver.stop(server.home)
        return
    try:
        wait_for(server.url, seconds=1)
    except psycopg.OperationalError:
        server.start()  # whatever the test did, the suite goes on with the server up


def migrated_database(server: Server) -> str:
    """A new database on ``server`` with every migration applied; its URL.

    Its commits are durable before they are acknowledged (``synchronous_commit=on``): the
    embedded server's default lets a crash lose the last acknowledged commits by design, and
    what survives a crash is what these tests check.
    """
    admin = parse_database_url(server.url)
    made = create_database(admin, f"sdbfault_{secrets.token_hex(5)}")
    with psycopg.connect(made.libpq_url(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{made.database}" SET synchronous_commit = on')
    migrate.deploy(Target("shared", made, CHAINS), PACKAGE_MIGRATIONS)
    return made.libpq_url()


ABSENT_STANDBY = "shared_db_absent_standby"


def standby_wanted(url: str, wanted: bool) -> None:
    """Make every commit on ``url``'s server wait for a synchronous standby that does not exist
    (durable locally, its reply held back), or stop that."""
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if wanted:
            conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{ABSENT_STANDBY}'")
        else:
            conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.3)  # every process reads the new setting on its next loop


@contextmanager
def commits_unanswered(url: str) -> Iterator[None]:
    """While inside, a commit (with ``synchronous_commit`` on) gets no reply."""
    standby_wanted(url, True)
    try:
        yield
    finally:
        standby_wanted(url, False)


def terminate(url: str, event: str | None = None) -> int:
    """End the sessions of ``url``'s database that wait on ``event`` (or the idle ones), once
    there are any; how many."""
    database = str(conninfo_to_dict(url)["dbname"])
    condition = "wait_event = %s" if event else "state = 'idle' AND pid <> pg_backend_pid()"
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(400):
            found = conn.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                f"AND {condition}", (database, *([event] if event else []))).fetchall()
            if found:
                return len(found)
            time.sleep(0.025)
    return 0

"""Servers a test may restart or crash (``bench.faults.Server``).

With ``DATABASE_URL`` unset, a private embedded server of the test's own. With it set (CI, the
server at 127.0.0.1:5432) that server itself, through Debian's ``pg_ctlcluster``, when this
process may control it (root); otherwise the test is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

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
    """A new database on ``server`` with every migration applied; its URL."""
    admin = parse_database_url(server.url)
    made = create_database(admin, f"sdbfault_{secrets.token_hex(5)}")
    migrate.deploy(Target("shared", made, CHAINS), PACKAGE_MIGRATIONS)
    return made.libpq_url()

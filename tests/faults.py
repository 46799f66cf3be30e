"""Servers a test may restart or crash.

With ``DATABASE_URL`` unset, a private embedded server of the test's own. With it set (CI, the
server at 127.0.0.1:5432) that server itself, through Debian's ``pg_ctlcluster``, when this
process may control it (root); otherwise the test is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.ops import devserver, migrate
from shared_db.ops.chains import CHAINS
from shared_db.ops.scratch import create_database
from shared_db.ops.targets import Target
from shared_db.url import ConnectionSettings, parse_database_url


@dataclass
class Server:
    """A server the test may stop in either of PostgreSQL's ways, and start again."""

    url: str
    home: Path | None = None
    cluster: tuple[str, str] | None = None

    def stop(self, mode: str) -> None:
        """``fast`` (a restart: sessions are told and closed) or ``immediate`` (a crash)."""
        if self.home is not None:
            user = devserver.SERVER_USER if os.geteuid() == 0 else None
            subprocess.run([str(devserver.bin_dir() / "pg_ctl"), "-D",
                            str(self.home / "pgdata"), "-m", mode, "-w", "stop"],
                           check=True, capture_output=True, user=user, cwd=self.home)
        else:
            assert self.cluster is not None
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *self.cluster, "stop",
                            "-m", mode], check=True, capture_output=True)

    def start(self) -> None:
        if self.home is not None:
            devserver.start(self.home)
        else:
            assert self.cluster is not None
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *self.cluster,
                            "start"], check=True, capture_output=True)
        wait_for(self.url)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _system_cluster(conn: ConnectionSettings) -> tuple[str, str] | None:
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        return None
    if conn.url.host not in ("127.0.0.1", "localhost") or (conn.url.port or 5432) != 5432:
        return None
    versions = sorted(Path("/etc/postgresql").glob("*/main"))
    return (versions[-1].parent.name, "main") if versions else None


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Server]:
    """A server to restart and crash; its URL names its ``postgres`` database."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        home = tmp_path / "server"
        base = devserver.start(home)
        yield Server(parse_database_url(base).with_database("postgres").libpq_url(), home=home)
        devserver.stop(home)
        return
    conn = parse_database_url(url)
    cluster = _system_cluster(conn)
    if cluster is None:
        pytest.skip("restarting the DATABASE_URL server needs root and Debian's pg_ctlcluster")
    server = Server(conn.with_database("postgres").libpq_url(), cluster=cluster)
    yield server
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

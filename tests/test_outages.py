"""Every way a database can be out of reach at start-up: the client and the command line say
which, typed as ``DatabaseUnavailableError``, within ``connect_timeout``, and quietly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import DatabaseUnavailableError
from shared_db.url import ConnectionSettings
from tests.conftest import DbFixture
from tests.password_server import PASSWORD, password_server

TIMEOUT = 2  # seconds of connect_timeout in the URLs below (libpq's least)
MARGIN = 1.0


@pytest.fixture(scope="module")
def refused_port() -> int:
    """A port nothing listens on (bound once for a free number, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that completes TCP handshakes (the kernel's backlog) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.fixture(scope="module")
def guarded() -> Iterator[str]:
    """The URL of a server that checks passwords, with the right one."""
    with password_server() as url:
        yield url


Target = Callable[[], str]


@pytest.fixture
def targets(refused_port: int, silent_port: int, server: ConnectionSettings,
            request: pytest.FixtureRequest) -> dict[str, Target]:
    """Cause -> a URL failing for that cause (built lazily: the password server is slow)."""
    query = f"?connect_timeout={TIMEOUT}"
    return {
        "refused": lambda: f"postgresql://postgres@127.0.0.1:{refused_port}/app{query}",
        "timed out": lambda: f"postgresql://postgres@127.0.0.1:{silent_port}/app{query}",
        "unknown host": lambda: f"postgresql://postgres@no-such-host.invalid:5432/app{query}",
        "database does not exist": lambda: server.with_database(
            "sdb_missing_database").libpq_url() + query,
        "authentication failed": lambda: request.getfixturevalue("guarded").replace(
            PASSWORD, "wrong-password") + query,
    }


CAUSES = ["refused", "timed out", "unknown host", "database does not exist",
          "authentication failed"]


@pytest.mark.parametrize("cause", CAUSES)
async def test_open_names_the_cause_within_connect_timeout(
        cause: str, targets: dict[str, Target], capfd: pytest.CaptureFixture[str]) -> None:
    url = targets[cause]()
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as raised:
        await Database(load_settings({"DATABASE_URL": url})).open()
    elapsed = time.monotonic() - started
    assert f": {cause} (" in str(raised.value)
    assert elapsed < TIMEOUT + MARGIN, f"{cause} took {elapsed:.2f} s"
    assert "wrong-password" not in str(raised.value)
    assert capfd.readouterr().err == ""  # no pool warnings, once or repeated


async def test_connect_timeout_defaults_to_five_seconds(silent_port: int) -> None:
    settings = load_settings({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{silent_port}/app"})
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match=": timed out \\("):
        await Database(settings).open()
    assert 4.5 < time.monotonic() - started < 5 + MARGIN


async def test_a_failed_open_leaves_no_pool_behind(migrated_db: DbFixture,
                                                   refused_port: int) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{refused_port}/app"
    settings = load_settings({"SHARED_DB_TOPOLOGY": "per-service",
                              "AUTH_DATABASE_URL": migrated_db.url,
                              "PAYMENTS_DATABASE_URL": dead, "ADMIN_DATABASE_URL": dead,
                              "PROFILE_DATABASE_URL": migrated_db.url})
    with pytest.raises(DatabaseUnavailableError, match=": refused \\("):
        await Database(settings, recover_after=None).open()
    with psycopg.connect(migrated_db.url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid()").fetchone()
    assert row == (0,)


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared_db", *args],
                          env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                          text=True, timeout=60, check=False, cwd=Path(__file__).parent)


@pytest.mark.parametrize("command", [("migrate", "status"), ("doctor",),
                                     ("studio", "--no-browser")])
@pytest.mark.parametrize("cause", CAUSES)
def test_cli_exits_3_with_one_line(cause: str, command: tuple[str, ...],
                                   targets: dict[str, Target]) -> None:
    done = _cli(*command, url=targets[cause]())
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot connect to ") and f": {cause} (" in line
    assert "wrong-password" not in done.stderr + done.stdout

"""The query log, the N+1 detector, ``shared-db stats`` and ``shared-db metrics`` against hostile
callbacks, names, statements and addresses, on real PostgreSQL."""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import bindparam, func, select

from shared_db.cli import main
from shared_db.client import Database
from shared_db.config import QueryLogSettings
from shared_db.observe import NPlusOneError, detect_n_plus_one
from shared_db.ops import monitoring
from shared_db.redact import redact_sql
from shared_db.sql import Query, QueryEvent
from tests.conftest import DbFixture
from tests.factories import make_user

SLEEP = Query.build("test.sleep", select(func.pg_sleep(bindparam("seconds"))))


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the query log writes through a plain handler, as a service's would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("shared_db.query")
    logger.addHandler(handler)
    old_level, logger.level = logger.level, logging.DEBUG
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_a_failing_callback_in_json_logs_is_one_object_on_one_line(
        migrated_db: DbFixture, lines: io.StringIO) -> None:
    log = QueryLogSettings(log_format="json", slow_ms=1.0)
    async with Database(migrated_db.settings(), log=log) as db:
        def broken(event: QueryEvent) -> None:
            raise RuntimeError("the callback's own bug")
        db.query_log.on_slow(broken)
        async with db.executor("auth") as ex:
            await ex.scalar(SLEEP, {"seconds": 0.01})
        await make_user(db, "json-callback@example.com")
    written = lines.getvalue().splitlines()
    events = [json.loads(line) for line in written]  # every line is a whole object
    failed = [e for e in events if e["event"] == "callback_failed"]
    assert failed and all(e["kind"] == "slow-query" for e in failed)
    assert {e["query"] for e in failed} >= {"test.sleep", "users.create"}
    assert all("RuntimeError: the callback's own bug" in e["traceback"] for e in failed)
    assert failed[0]["error"] == "RuntimeError: the callback's own bug"
    assert "json-callback" not in lines.getvalue()


async def test_the_counts_of_a_unit_are_the_ones_yielded(migrated_db: DbFixture) -> None:
    async with Database(migrated_db.settings()) as db:
        with detect_n_plus_one() as counts:
            for key in ("a", "b", "c"):
                await db.config.get(key)
        assert sorted(counts.values()) == [3]


async def test_writes_in_a_loop_warn_in_the_request_around_them(
        migrated_db: DbFixture, caplog: pytest.LogCaptureFixture) -> None:
    # Each db.config.set runs in a transaction of its own: only the request sees the loop.
    async with Database(migrated_db.settings(), log=QueryLogSettings(n_plus_one=3)) as db:
        with detect_n_plus_one():
            for i in range(5):
                await db.config.set(f"loop{i}", i)
        async with db.transaction() as tx:  # a transaction alone: nothing counted twice
            for key in ("x", "y", "z"):
                await tx.config.get(key)
    messages = [r.getMessage() for r in caplog.records if "N+1" in r.getMessage()]
    by_query = {m.split()[2]: m for m in messages}
    assert "write the rows together" in by_query["config.set"], messages
    assert messages.count("possible N+1: config.get ran 3 times in one unit of work; load the "
                          "rows together (e.g. users.eager_many)") == 1, messages
    strict = QueryLogSettings(n_plus_one=3, strict=True)
    async with Database(migrated_db.settings(), log=strict) as db:
        with detect_n_plus_one(), pytest.raises(NPlusOneError, match="ran 3 times"):
            for i in range(5):
                await db.config.set(f"strict{i}", i)


def test_stats_shows_names_that_look_like_markup_as_they_are(
        migrated_db: DbFixture, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "[/bold]t" (id int PRIMARY KEY)')
        conn.execute('CREATE INDEX "[red]i" ON "[/bold]t" (id)')
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "[/bold]t" in out and "[red]i" in out
    assert "Unused indexes (no scans, not unique): [red]i" in out


def test_redact_sql_hides_the_constants_of_statements_about_passwords() -> None:
    cases = {
        "ALTER ROLE app PASSWORD 'it''s'": "ALTER ROLE app PASSWORD '***'",
        "CREATE ROLE app LOGIN ENCRYPTED PASSWORD E'a\\'b'":
            "CREATE ROLE app LOGIN ENCRYPTED PASSWORD '***'",
        "alter user app with password $q1$p'w$$x$q1$": "alter user app with password '***'",
        "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'pw')":
            "CREATE USER MAPPING FOR app SERVER s OPTIONS (user '***', password '***')",
        "SELECT dblink_connect('host=h password=pw')": "SELECT dblink_connect('***')",
        "SELECT * FROM dblink('postgresql://u:pw@h/db', $1)":
            "SELECT * FROM dblink('postgresql://u:***@h/db', $1)",
        # not about a password: unchanged
        "SELECT password_hash FROM users WHERE id = $1":
            "SELECT password_hash FROM users WHERE id = $1",
        "CREATE TYPE \"UserRole\" AS ENUM ('ADMIN')": "CREATE TYPE \"UserRole\" AS ENUM ('ADMIN')",
    }
    assert {text: redact_sql(text) for text in cases} == cases


def test_stats_never_shows_a_password_pg_stat_statements_kept(migrated_db: DbFixture) -> None:
    role, secret = f"probe_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        preloaded = "pg_stat_statements" in str(
            conn.execute("SHOW shared_preload_libraries").fetchone())
        if not preloaded:
            pytest.skip("pg_stat_statements is not preloaded on this server")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        # A server that ran the suite keeps pg_stat_statements.max entries and evicts the least
        # used, which a statement run once may be before collect() reads it.
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        try:
            conn.execute(f"ALTER ROLE {role} PASSWORD '{secret}x'")
            stats = monitoring.collect(migrated_db.target(), top=100)
        finally:
            conn.execute(f"DROP ROLE {role}")
    texts = [s.query for s in stats.top_statements]
    assert f"CREATE ROLE {role} LOGIN PASSWORD '***'" in texts
    assert f"ALTER ROLE {role} PASSWORD '***'" in texts
    assert secret not in repr(stats)


def _metrics(db: DbFixture, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared_db", "metrics", *args],
                          env=db.env(), capture_output=True, text=True, timeout=60)


def test_metrics_on_an_address_of_no_interface_blames_the_host(migrated_db: DbFixture) -> None:
    done = _metrics(migrated_db, "--port", "0", "--host", "192.0.2.1")  # TEST-NET-1
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "error: --host: cannot listen on 192.0.2.1:0: "), done.stderr
    assert "Traceback" not in done.stderr


def test_metrics_on_a_port_in_use_blames_the_port(migrated_db: DbFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _metrics(migrated_db, "--port", str(port))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        f"error: --port: cannot listen on 127.0.0.1:{port}: "), done.stderr

"""Deploy under lock_timeout: while a long transaction holds a table, other sessions' reads keep
being served as the deploy waits, backs off and tries again; it then succeeds, or fails with a
typed error leaving the previous migration applied."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from shared_db.errors import LockTimeoutError
from shared_db.ops import migrate
from shared_db.ops.locks import LockPolicy
from shared_db.ops.targets import Target
from tests.catalog import snapshot
from tests.cli.test_migrate_cli import cli
from tests.conftest import DbFixture
from tests.migrations.extra import copy_with, migration

ADD_NOTE = migration('op.execute("ALTER TABLE system_config ADD COLUMN note text")',
                     'op.execute("ALTER TABLE system_config DROP COLUMN note")')
POLICY = LockPolicy(timeout=0.2, retries=30, backoff=0.1, max_backoff=0.3)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_with(tmp_path, {"admin/20261202000000_add_note": ADD_NOTE})


class Reader(threading.Thread):
    """Reads system_config in a loop, recording how long each read took."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.stop = url, [], threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '10s'")
            while not self.stop.is_set():
                started = time.monotonic()
                conn.execute("SELECT count(*) FROM system_config").fetchone()
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.02)


def _hold(url: str) -> psycopg.Connection:
    holder = psycopg.connect(url)
    holder.execute("SELECT * FROM system_config").fetchall()  # ACCESS SHARE until commit
    return holder


@pytest.mark.parametrize("topology", ["shared", "per-service"])
def test_reads_are_served_while_deploy_waits_then_it_succeeds(migrated_db: DbFixture,
                                                              folder: Path, topology: str) -> None:
    target = migrated_db.target() if topology == "shared" else Target(
        "admin", migrated_db.connection, ("admin",))
    holder = _hold(migrated_db.url)
    reader = Reader(migrated_db.url)
    reader.start()
    waits: list[str] = []
    outcome: list[object] = []
    run = migrate.StepRun(POLICY, notice=waits.append)
    deploy = threading.Thread(target=lambda: outcome.append(
        migrate.deploy(target, folder, run=run)), daemon=True)
    deploy.start()
    deadline = time.monotonic() + 30
    while len(waits) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    served_while_waiting = len(reader.latencies)
    assert len(waits) >= 4, waits
    assert "lock not granted within 0.2 s" in waits[0]
    holder.commit()  # the long transaction ends: the next try gets its lock
    deploy.join(30)
    reader.stop.set()
    reader.join(10)
    holder.close()
    assert served_while_waiting >= 10
    # A read waited at most one lock_timeout behind the queued ALTER, never the whole hold.
    assert max(reader.latencies) < 1.5, max(reader.latencies)
    (applied,) = outcome
    assert [s.label for s in applied.steps] == ["admin:20261202000000_add_note"]
    assert "note" in snapshot(migrated_db.url)["tables"]["system_config"]


def test_deploy_gives_up_with_a_typed_error_and_keeps_the_previous_migration(
        migrated_db: DbFixture, folder: Path) -> None:
    holder = _hold(migrated_db.url)
    try:
        with pytest.raises(LockTimeoutError, match="in 3 tries"):
            migrate.deploy(migrated_db.target(), folder,
                           run=migrate.StepRun(LockPolicy(timeout=0.1, retries=2, backoff=0.05)))
        env = {**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder),
               "SHARED_DB_LOCK_TIMEOUT": "0.1", "SHARED_DB_LOCK_RETRIES": "1"}
        result = cli("migrate", "deploy", env=env)
    finally:
        holder.close()
    assert result.returncode == 7, result.stderr
    assert "lock not granted within 0.1 s (try 1)" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: could not apply admin:20261202000000_add_note") and (
        "in 2 tries" in last), last
    assert "note" not in snapshot(migrated_db.url)["tables"]["system_config"]
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version_admin").fetchone() == (
            "20261201000000",)


@pytest.mark.parametrize(("name", "value", "rule"), [
    ("SHARED_DB_LOCK_TIMEOUT", "0", "must be a number of at least 0.001"),
    ("SHARED_DB_LOCK_RETRIES", "two", "must be a whole number from 0"),
])
def test_bad_lock_settings_name_the_variable(migrated_db: DbFixture, name: str, value: str,
                                             rule: str) -> None:
    result = cli("migrate", "deploy", env={**migrated_db.env(), name: value})
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {name}: {rule}, got {value!r}"


def test_down_runs_under_the_configured_lock_timeout_too(migrated_db: DbFixture) -> None:
    holder = psycopg.connect(migrated_db.url)
    try:
        holder.execute("SELECT * FROM payments_idempotency_keys").fetchall()
        result = cli("migrate", "down", env={**migrated_db.env(), "SHARED_DB_LOCK_TIMEOUT": "0.1",
                                             "SHARED_DB_LOCK_RETRIES": "0"})
    finally:
        holder.close()
    assert result.returncode == 7, result.stderr
    assert ("error: could not roll back payments:20261201000000_add_idempotency_keys: a lock "
            "was not granted") in result.stderr
    assert "payments_idempotency_keys" in snapshot(migrated_db.url)["tables"]


SPLIT_NOTE = migration('op.execute("COMMIT")\nop.execute("BEGIN")\n'
                       'op.execute("ALTER TABLE system_config ADD COLUMN note text")',
                       'op.execute("ALTER TABLE system_config DROP COLUMN note")')
SPLIT_FAILING = migration('op.execute("CREATE TABLE split_probe (i int)")\n'
                          'op.execute("COMMIT; BEGIN; SELECT 1/0")',
                          'op.execute("DROP TABLE split_probe")')


def test_a_hand_written_commit_begin_pair_keeps_the_lock_timeout(migrated_db: DbFixture,
                                                                 tmp_path: Path) -> None:
    # The pair ends the transaction a SET LOCAL lock_timeout lived in: the deploy waited for
    # the holder, queueing every query on the table behind its ACCESS EXCLUSIVE request.
    folder = copy_with(tmp_path, {"admin/20261202000000_split_note": SPLIT_NOTE})
    holder = _hold(migrated_db.url)
    started = time.monotonic()
    try:
        with pytest.raises(LockTimeoutError, match="in 2 tries"):
            migrate.deploy(migrated_db.target(), folder,
                           run=migrate.StepRun(LockPolicy(timeout=0.2, retries=1, backoff=0.05)))
    finally:
        holder.close()
    assert time.monotonic() - started < 10
    assert "note" not in snapshot(migrated_db.url)["tables"]["system_config"]


def test_a_split_migration_that_fails_says_what_stayed(migrated_db: DbFixture,
                                                       tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_split_failing": SPLIT_FAILING})
    env = {**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    result = cli("migrate", "deploy", env=env)
    assert result.returncode == 4, result.stderr
    assert "stays applied" in result.stderr.splitlines()[-1], result.stderr
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version_admin").fetchone() == (
            "20261201000000",)

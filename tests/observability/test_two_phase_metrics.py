"""The two-phase metrics under real faults, per service: a participant's session terminated
between PREPARE TRANSACTION and COMMIT PREPARED, its database refusing new connections or not.
What the counters say, read by a real HTTP scrape, is what ``pg_prepared_xacts`` shows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared_db.client import Database
from shared_db.config import Settings, load_settings
from shared_db.errors import DatabaseUnavailableError, InDoubtError
from shared_db.profile.service import create_user_with_profile
from shared_db.services import SERVICES
from shared_db.sql import QueryEvent
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH
from tests.faults import standby_wanted
from tests.observability.conftest import observed
from tests.observability.test_metrics import scrape, value
from tests.topology.test_two_phase import NOTHING, WHOLE, _prepared, _rows

LAST_PREPARE = ":2:3'"  # parts: admin 0, profile 1, auth 2 (auth always last)
PART = {"admin": 0, "profile": 1, "auth": 2}


def _settings(stores: Stores) -> Settings:
    # A short pool_timeout: settling a part on a database that refuses connections fails in
    # seconds rather than the default ten per try.
    return observed(load_settings({"SHARED_DB_TOPOLOGY": "per-service", **{
        f"{s.upper()}_DATABASE_URL": stores.url(s) + "?pool_timeout=0.5" for s in SERVICES}}),
        metrics=True)


def _end_sessions(url: str, event: str | None = None) -> int:
    """``tests.faults.terminate`` (the sessions waiting on ``event``, or the idle ones, once
    there are any), run from the ``postgres`` database: ``url``'s may be refusing sessions."""
    name = str(conninfo_to_dict(url)["dbname"])
    which = "wait_event = %s" if event else "state = 'idle'"
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        for _ in range(400):
            found = conn.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                f"AND {which}", (name, *([event] if event else []))).fetchall()
            if found:
                return len(found)
            time.sleep(0.025)
    return 0


def _allow_connections(url: str, allowed: bool) -> None:
    name = str(conninfo_to_dict(url)["dbname"])
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        # Its commit must not wait for the absent standby a test may be asking the server for.
        conn.execute("SET synchronous_commit = local")
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allowed else "false")))


@contextmanager
def refusing(url: str) -> Iterator[None]:
    """``url``'s database refuses new sessions while inside (its live ones go on)."""
    try:
        yield
    finally:
        _allow_connections(url, True)


def _cut_after_the_last_prepare(stores: Stores, service: str, unreachable: bool,
                                done: list[int]) -> Callable[[QueryEvent], None]:
    def cut(event: QueryEvent) -> None:
        if event.name == "twophase.prepare" and LAST_PREPARE in event.sql and not done:
            if unreachable:
                _allow_connections(stores.url(service), False)
            done.append(_end_sessions(stores.url(service)))
    return cut


def _two_phase(db: Database) -> dict[str, float]:
    assert db.metrics is not None
    samples = scrape(db.metrics.registry)
    counts = {outcome: sum(s.value for s in samples if s.name ==
                           "shared_db_two_phase_commits_total"
                           and s.labels.get("outcome") == outcome)
              for outcome in ("committed", "rolled_back", "in_doubt")}
    counts["in_doubt_parts"] = value(samples, "shared_db_two_phase_in_doubt_parts_total")
    return counts


async def _create(db: Database) -> None:
    await create_user_with_profile(db, email="m@example.com", name="M", role="CUSTOMER",
                                   password_hash=PASSWORD_HASH)


async def test_a_part_killed_before_commit_prepared_and_settled_anew_counts_committed(
        private_stores: Stores) -> None:
    done: list[int] = []
    async with Database(_settings(private_stores)) as db:
        db.hooks.listeners.append(_cut_after_the_last_prepare(private_stores, "admin", False,
                                                              done))
        await _create(db)
        assert done and done[0] >= 1  # part 0's session was terminated with it prepared
        assert _two_phase(db) == {"committed": 1, "rolled_back": 0, "in_doubt": 0,
                                  "in_doubt_parts": 0}
    assert _rows(private_stores) == WHOLE and _prepared(private_stores) == NOTHING


async def test_a_later_part_left_prepared_counts_committed_and_one_part_in_doubt(
        private_stores: Stores) -> None:
    """auth's session dies after part 0 is committed, and auth refuses new sessions: the
    transaction is committed (part 0 decided it) and auth's part waits for recovery."""
    done: list[int] = []
    with refusing(private_stores.url("auth")):
        async with Database(_settings(private_stores), recover_after=None) as db:
            db.hooks.listeners.append(_cut_after_the_last_prepare(private_stores, "auth",
                                                                  True, done))
            await _create(db)
            counts = _two_phase(db)
    assert done and done[0] >= 1
    left = _prepared(private_stores)
    assert left == {"auth": 1, "admin": 0, "profile": 0}
    assert counts == {"committed": 1, "rolled_back": 0, "in_doubt": 0,
                      "in_doubt_parts": sum(left.values())}
    async with Database(private_stores.settings()) as db:
        (settled,) = await db.recover(older_than=0)
        assert (settled.outcome, settled.parts) == ("committed", 1)
    assert _rows(private_stores) == WHOLE and _prepared(private_stores) == NOTHING


async def test_part_zero_unreachable_at_commit_counts_every_part_in_doubt(
        private_stores: Stores) -> None:
    done: list[int] = []
    with refusing(private_stores.url("admin")):
        async with Database(_settings(private_stores), recover_after=None) as db:
            db.hooks.listeners.append(_cut_after_the_last_prepare(private_stores, "admin",
                                                                  True, done))
            with pytest.raises(InDoubtError):
                await _create(db)
            counts = _two_phase(db)
    left = _prepared(private_stores)
    assert left == {"auth": 1, "admin": 1, "profile": 1}
    assert counts == {"committed": 0, "rolled_back": 0, "in_doubt": 1,
                      "in_doubt_parts": sum(left.values())}
    async with Database(private_stores.settings()) as db:
        (settled,) = await db.recover(older_than=0)  # part 0 still prepared: all undone
        assert (settled.outcome, settled.parts) == ("rolled back", 3)
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING


async def test_a_failure_between_the_databases_counts_rolled_back(
        private_stores: Stores) -> None:
    def fail_after_first_prepare(event: QueryEvent) -> None:
        if event.name == "twophase.prepare" and ":0:3'" in event.sql:
            raise RuntimeError("fault injected between the databases")

    async with Database(_settings(private_stores)) as db:
        db.hooks.listeners.append(fail_after_first_prepare)
        with pytest.raises(RuntimeError, match="fault injected"):
            await _create(db)
        assert _two_phase(db) == {"committed": 0, "rolled_back": 1, "in_doubt": 0,
                                  "in_doubt_parts": 0}
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING


async def test_a_lost_prepare_left_to_recovery_counts_its_parts_in_doubt(
        private_stores: Stores) -> None:
    """auth's PREPARE TRANSACTION takes effect but its reply never comes (it waits for a
    synchronous standby that does not exist, and its session is terminated), and auth refuses
    new sessions, so the coordinator cannot tell whether it is prepared: part 0 stays prepared
    so that recovery rolls back both, and those parts are counted as in doubt."""
    auth = private_stores.url("auth")
    for service in SERVICES:
        url = private_stores.url(service)
        mode = "on" if service == "auth" else "local"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = {}").format(
                sql.Identifier(str(conninfo_to_dict(url)["dbname"])), sql.SQL(mode)))
    with refusing(auth):
        async with Database(_settings(private_stores), recover_after=None) as db:
            standby_wanted(auth, True)
            try:
                cut = _cut_the_reply(auth)
                with pytest.raises(DatabaseUnavailableError):
                    await _create(db)
                cut.join()
            finally:
                standby_wanted(auth, False)
            counts = _two_phase(db)
    left = _prepared(private_stores)
    assert left == {"auth": 1, "admin": 1, "profile": 0}
    assert counts == {"committed": 0, "rolled_back": 1, "in_doubt": 0,
                      "in_doubt_parts": sum(left.values())}
    async with Database(private_stores.settings()) as db:
        (settled,) = await db.recover(older_than=0)
        assert (settled.outcome, settled.parts) == ("rolled back", 2)
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING


def _cut_the_reply(auth: str) -> threading.Thread:
    """auth refuses new sessions and loses its idle ones (the pool's, which could settle the
    part), then the session waiting for the PREPARE's reply."""
    def cut() -> None:
        _allow_connections(auth, False)
        _end_sessions(auth)
        assert _end_sessions(auth, "SyncRep") == 1
    thread = threading.Thread(target=cut)
    thread.start()
    return thread

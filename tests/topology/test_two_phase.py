"""User + audit row + profile across three databases: all or nothing, whatever fails where.

Faults are real: a statement fails between two databases, a participant's backend is killed,
and the coordinating process is killed with SIGKILL at each step of the commit. After each, no
user is visible without its profile, and ``recover`` settles what was left prepared.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from shared_db.client import Database
from shared_db.errors import DatabaseUnavailableError
from shared_db.ops import doctor
from shared_db.ops.targets import resolve_targets
from shared_db.profile.service import create_user_with_profile
from shared_db.sql import QueryEvent
from tests.cli.test_migrate_cli import cli
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH


def _prepared(stores: Stores) -> dict[str, int]:
    counts = {}
    for service in ("auth", "admin", "profile"):
        with psycopg.connect(stores.url(service)) as conn:
            counts[service] = conn.execute(
                "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database() "
                "AND gid LIKE 'shared-db:%'").fetchone()[0]
    return counts


def _rows(stores: Stores) -> dict[str, int]:
    queries = {"auth": "SELECT count(*) FROM users", "admin": "SELECT count(*) FROM audit_logs",
               "profile": "SELECT count(*) FROM user_profiles"}
    counts = {}
    for service, query in queries.items():
        with psycopg.connect(stores.url(service)) as conn:
            counts[service] = conn.execute(query).fetchone()[0]
    return counts


NOTHING = {"auth": 0, "admin": 0, "profile": 0}
WHOLE = {"auth": 1, "admin": 1, "profile": 1}


async def test_commit_is_two_phase_with_auth_last(private_stores: Stores) -> None:
    seen: list[QueryEvent] = []
    async with Database(private_stores.settings()) as db:
        db.hooks.listeners.append(seen.append)
        user, profile = await create_user_with_profile(
            db, email="whole@example.com", name="W", role="CUSTOMER", password_hash=PASSWORD_HASH,
            profile={"bio": "b"})
        assert profile.user_id == user.id
    steps = [e.sql for e in seen if e.name.startswith("twophase.")]
    assert [s.split("'")[0] for s in steps] == ["PREPARE TRANSACTION "] * 3 + [
        "COMMIT PREPARED "] * 3
    gids = [s.split("'")[1] for s in steps[:3]]  # the statement's text ends with its name
    assert [gid.rsplit(":", 2)[1] for gid in gids] == ["0", "1", "2"]
    assert _rows(private_stores) == WHOLE and _prepared(private_stores) == NOTHING


async def test_a_failure_between_the_databases_undoes_every_part(private_stores: Stores) -> None:
    def fail_after_first_prepare(event: QueryEvent) -> None:
        if event.name == "twophase.prepare" and ":0:3'" in event.sql:
            raise RuntimeError("fault injected between the databases")

    async with Database(private_stores.settings()) as db:
        db.hooks.listeners.append(fail_after_first_prepare)
        with pytest.raises(RuntimeError, match="fault injected"):
            await create_user_with_profile(db, email="half@example.com", name="H",
                                           role="CUSTOMER", password_hash=PASSWORD_HASH)
        db.hooks.listeners.clear()
        assert await db.users.get_by_email("half@example.com") is None
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING


async def test_a_participant_killed_before_its_prepare(private_stores: Stores) -> None:
    async with Database(private_stores.settings()) as db:
        victims: list[int] = []

        def kill_profile_backend(event: QueryEvent) -> None:
            if event.name == "twophase.prepare" and ":0:3'" in event.sql:
                with psycopg.connect(private_stores.url("profile"), autocommit=True) as conn:
                    victims.extend(r[0] for r in conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "datname = current_database() AND state = 'idle in transaction'"))

        db.hooks.listeners.append(kill_profile_backend)
        with pytest.raises(DatabaseUnavailableError):
            await create_user_with_profile(db, email="half@example.com", name="H",
                                           role="CUSTOMER", password_hash=PASSWORD_HASH)
        assert victims == [True]
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING


@pytest.mark.parametrize(("name", "nth", "left", "outcome", "after"), [
    ("twophase.prepare", 1, {"auth": 0, "admin": 1, "profile": 0}, "rolled back", NOTHING),
    ("twophase.prepare", 3, {"auth": 1, "admin": 1, "profile": 1}, "rolled back", NOTHING),
    ("twophase.commit", 1, {"auth": 1, "admin": 0, "profile": 1}, "committed", WHOLE),
    ("twophase.commit", 2, {"auth": 1, "admin": 0, "profile": 0}, "committed", WHOLE),
])
async def test_coordinator_killed_mid_commit_is_recovered(
        private_stores: Stores, name: str, nth: int, left: dict[str, int], outcome: str,
        after: dict[str, int]) -> None:
    _kill_coordinator(private_stores, name, nth)
    assert _prepared(private_stores) == left
    async with Database(private_stores.settings()) as db:
        assert db.recovered == []  # opening settles only parts older than a minute
        # The user is invisible while in doubt: its auth part is the last to commit.
        assert await db.users.get_by_email("half@example.com") is None
        assert await db.recover(older_than=60) == []  # too young: a live coordinator's
        (settled,) = await db.recover(older_than=0)
        assert (settled.outcome, settled.parts) == (outcome, sum(left.values()))
        assert await db.recover(older_than=0) == []
        found = await db.users.get_by_email("half@example.com")
        assert (found is not None) == (after == WHOLE)
        if found is not None:
            loaded = await db.users.eager(found.id)
            assert loaded is not None and loaded.profile is not None
            assert loaded.profile.bio == "all or nothing"
    assert _rows(private_stores) == after and _prepared(private_stores) == NOTHING


def test_db_recover_from_the_command_line(private_stores: Stores) -> None:
    env = _kill_coordinator(private_stores, "twophase.commit", 1)
    young = cli("db", "recover", env=env)
    assert young.returncode == 0 and "Nothing in doubt." in young.stdout
    settled = cli("db", "recover", "--older-than", "0", env=env)
    assert settled.returncode == 0, settled.stderr
    assert "committed (2 part(s))" in settled.stdout
    assert _rows(private_stores) == WHOLE and _prepared(private_stores) == NOTHING


def _kill_coordinator(stores: Stores, name: str, nth: int) -> dict[str, str]:
    env = {**os.environ, **{f"{s.upper()}_DATABASE_URL": u for s, u in stores.urls.items()},
           "SHARED_DB_TOPOLOGY": "per-service"}
    child = subprocess.run([sys.executable, "-m", "tests.topology.two_phase_child", name,
                            str(nth)], env=env, capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    return env


async def test_a_restarted_service_recovers_on_open(private_stores: Stores) -> None:
    _kill_coordinator(private_stores, "twophase.commit", 2)
    async with Database(private_stores.settings(), recover_after=0) as db:
        assert [(s.outcome, s.parts) for s in db.recovered] == [("committed", 1)]
        assert await db.users.get_by_email("half@example.com") is not None
    assert _rows(private_stores) == WHOLE and _prepared(private_stores) == NOTHING


def test_doctor_names_what_is_left_in_doubt(private_stores: Stores,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _kill_coordinator(private_stores, "twophase.prepare", 3)
    monkeypatch.setattr(doctor, "IN_DOUBT_AFTER", 0.0)
    settings = private_stores.settings()
    checks = {c.target: c for c in doctor.diagnose(settings, resolve_targets(settings))
              if c.name == "two-phase commit"}
    assert {t: c.status for t, c in checks.items()} == {
        "auth": "fail", "payments": "ok", "admin": "fail", "profile": "fail"}
    assert checks["auth"].fix == "run `shared-db db recover`"


async def test_readers_never_see_a_user_without_its_profile(private_stores: Stores) -> None:
    """A reader polls auth, then profile, while users are created; a pause is injected between
    the databases' commits to widen the window a wrong order would show (with auth committed
    first, this finds hundreds of orphans)."""
    stop, seen, orphans = threading.Event(), [0], []

    def reader() -> None:
        with (psycopg.connect(private_stores.url("auth"), autocommit=True) as auth,
              psycopg.connect(private_stores.url("profile"), autocommit=True) as profile):
            while not stop.is_set():
                users = [r[0] for r in auth.execute("SELECT id FROM users")]
                found = {r[0] for r in profile.execute(
                    "SELECT user_id FROM user_profiles WHERE user_id = ANY(%s)", (users,))}
                orphans.extend(set(users) - found)
                seen[0] = max(seen[0], len(users))

    def pause_between_commits(event: QueryEvent) -> None:
        if event.name == "twophase.commit":
            time.sleep(0.002)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        async with Database(private_stores.settings()) as db:
            db.hooks.listeners.append(pause_between_commits)
            for i in range(60):
                await create_user_with_profile(db, email=f"r{i}@example.com", name="R",
                                               role="CUSTOMER", password_hash="$2b$04$" + "a" * 53)
    finally:
        stop.set()
        thread.join()
    assert orphans == [] and seen[0] == 60


async def test_a_cancel_between_commits_finishes_every_part(private_stores: Stores) -> None:
    """A request's timeout landing after the first COMMIT PREPARED: the transaction is decided,
    so every part is committed before the cancellation is raised."""
    state: dict[str, object] = {"task": None, "done": False}

    def cancel_after_first_commit(event: QueryEvent) -> None:
        if event.name == "twophase.commit" and not state["done"]:
            state["done"] = True
            task = state["task"]
            assert isinstance(task, asyncio.Task)
            task.cancel()

    async with Database(private_stores.settings(), recover_after=None) as db:
        db.hooks.listeners.append(cancel_after_first_commit)
        state["task"] = asyncio.create_task(create_user_with_profile(
            db, email="cancelled@example.com", name="C", role="CUSTOMER",
            password_hash=PASSWORD_HASH, profile={"bio": "b"}))
        with pytest.raises(asyncio.CancelledError):
            await state["task"]  # type: ignore[misc]
        assert state["done"]
        assert _rows(private_stores) == WHOLE and _prepared(private_stores) == NOTHING
        assert await db.users.get_by_email("cancelled@example.com") is not None

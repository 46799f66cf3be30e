"""Two-phase commit when a participant's connection is lost mid-commit: the coordinator
settles that part on a new connection at once, and never leaves what recovery would finish
the wrong way (a later part prepared while part 0 is gone would be committed)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from shared_db.client import Database
from shared_db.errors import DatabaseUnavailableError
from shared_db.profile.service import create_user_with_profile
from shared_db.sql import QueryEvent
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH
from tests.faults import standby_wanted, terminate
from tests.topology.test_two_phase import NOTHING, WHOLE, _prepared, _rows


def _name(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


async def test_a_part_whose_connection_dies_before_its_commit_is_committed_anew(
        private_stores: Stores) -> None:
    """Every part is prepared; then part 0's session dies, so its COMMIT PREPARED fails: the
    part is still prepared, and a new connection commits it."""
    done: list[bool] = []

    def kill_part_zero(event: QueryEvent) -> None:
        if event.name == "twophase.prepare" and ":2:3'" in event.sql:
            done.append(terminate(private_stores.url("admin")) > 0)

    async with Database(private_stores.settings()) as db:
        db.hooks.listeners.append(kill_part_zero)
        user, _ = await create_user_with_profile(db, email="anew@example.com", name="A",
                                                 role="CUSTOMER", password_hash=PASSWORD_HASH)
        assert done == [True]
        assert await db.users.get(user.id) == user
    assert _rows(private_stores) == WHOLE and _prepared(private_stores) == NOTHING


async def test_a_prepare_lost_after_it_took_effect_is_rolled_back_at_once(
        private_stores: Stores) -> None:
    """auth's PREPARE TRANSACTION is durable but its reply never comes (it waits for a
    synchronous standby that does not exist, and its backend is terminated). The transaction
    fails plainly, and nothing stays prepared for recovery to commit."""
    auth = private_stores.url("auth")
    for service, mode in (("auth", "on"), ("admin", "local"), ("profile", "local")):
        url = private_stores.url(service)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{_name(url)}" SET synchronous_commit = {mode}')

    def cut_the_reply() -> None:
        try:
            assert terminate(auth, "SyncRep")
        finally:
            standby_wanted(auth, False)  # the rollback on a new connection must not wait either

    async with Database(private_stores.settings()) as db:
        standby_wanted(auth, True)
        cutter = threading.Thread(target=cut_the_reply)
        cutter.start()
        try:
            with pytest.raises(DatabaseUnavailableError) as caught:
                await create_user_with_profile(db, email="lost@example.com", name="L",
                                               role="CUSTOMER", password_hash=PASSWORD_HASH)
        finally:
            cutter.join()
            standby_wanted(auth, False)
        assert type(caught.value) is DatabaseUnavailableError  # nothing committed: plain
    time.sleep(0.3)
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING

"""A short mixed load (32 workers, pool of 8) and the ledger check; the long mode is
``python -m bench.load``."""

from __future__ import annotations

import pytest

from bench import faults, load
from bench.faults import Server
from shared_db.client import Database
from shared_db.config import load_settings
from tests import bouncer
from tests.conftest import DbFixture
from tests.faults import migrated_database, restartable

__all__ = ["restartable"]  # the fixture, imported for this module's tests


async def test_mixed_load_matches_the_ledger(migrated_db: DbFixture, capsys) -> None:
    settings = load_settings({"DATABASE_URL": migrated_db.url + "?connection_limit=8",
                              "SHARED_DB_ENV": "production"})
    async with Database(settings) as db:
        ledger, elapsed = await load.run(db, seconds=4, workers=32)
    assert ledger.payments and ledger.transitions
    load.check(migrated_db.url, ledger)
    with capsys.disabled():
        print("\n" + load.summary(ledger, elapsed))


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
async def test_writes_under_a_restart_and_a_crash_match_the_ledger(restartable: Server,
                                                                   through: str,
                                                                   capsys) -> None:
    if through == "pgbouncer":
        bouncer.require()
    url = migrated_database(restartable)  # durable commits, or a crash loses some
    with faults.reached(url, through == "pgbouncer", "connection_limit=8") as client_url:
        settings = load_settings({"DATABASE_URL": client_url,
                                  "SHARED_DB_ENV": "production"})
        async with Database(settings) as db:
            ledger = await faults.run(db, faults.restarts(restartable), seconds=6, workers=32)
    counts = faults.check(url, ledger)  # 0 lost, 0 doubled, nothing unattempted, no half user
    assert counts["acknowledged"] > 100 and len(ledger.faults) == 2
    with capsys.disabled():
        print(f"\n{through}: " + faults.summary(ledger, counts))

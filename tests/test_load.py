"""A short mixed load (32 workers, pool of 8) and the ledger check; the long mode is
``python -m bench.load``."""

from __future__ import annotations

from bench import load
from shared_db.client import Database
from shared_db.config import load_settings
from tests.conftest import DbFixture


async def test_mixed_load_matches_the_ledger(migrated_db: DbFixture, capsys) -> None:
    settings = load_settings({"DATABASE_URL": migrated_db.url + "?connection_limit=8",
                              "SHARED_DB_ENV": "production"})
    async with Database(settings) as db:
        ledger, elapsed = await load.run(db, seconds=4, workers=32)
    assert ledger.payments and ledger.transitions
    load.check(migrated_db.url, ledger)
    with capsys.disabled():
        print("\n" + load.summary(ledger, elapsed))

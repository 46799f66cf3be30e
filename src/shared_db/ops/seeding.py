"""Run the seed against the configured topology."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from shared_db import interrupts
from shared_db.client import Database
from shared_db.config import Settings
from shared_db.errors import MigrationError, SharedDbError
from shared_db.ops.targets import Target
from shared_db.seed import FIXTURES, SeedReport, load_users, seed


async def _run(settings: Settings, fixtures: Path) -> SeedReport:
    load_users(fixtures)  # a bad fixture fails before any connection is made
    async with Database(settings) as db:
        try:
            return await seed(db, fixtures)
        except SharedDbError as exc:
            if exc.driver_error != "UndefinedTable":
                raise
            raise MigrationError(f"cannot seed: {exc}; the database is not migrated: run "
                                 "`shared-db migrate deploy` first") from None


def run_seed(settings: Settings, fixtures: Path = FIXTURES,
             targets: list[Target] | None = None) -> SeedReport:
    """Seed the users and profiles of the guide's section 4.1.

    ``targets`` already resolved by the caller are reused, so the embedded server is not looked
    up (and connected to) a second time.
    """
    if targets and settings.database_url is None and settings.topology == "shared":
        settings = replace(settings, database_url=targets[0].connection.libpq_url())
    return interrupts.run(_run(settings, fixtures))

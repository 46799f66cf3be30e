"""Run the seed against the configured topology."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared_db.client import Database
from shared_db.config import Settings
from shared_db.seed import FIXTURES, SeedReport, load_users, seed


async def _run(settings: Settings, fixtures: Path) -> SeedReport:
    load_users(fixtures)  # a bad fixture fails before any connection is made
    async with Database(settings) as db:
        return await seed(db, fixtures)


def run_seed(settings: Settings, fixtures: Path = FIXTURES) -> SeedReport:
    """Seed the users and profiles of the guide's section 4.1."""
    return asyncio.run(_run(settings, fixtures))

"""Run the seed against the configured topology, one transaction per database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from shared_db.engine import async_engine
from shared_db.ops.targets import Target
from shared_db.seed import FIXTURES, SeedReport, seed


def _owner(targets: list[Target], chain: str) -> Target:
    return next(t for t in targets if chain in t.chains)


async def _run(targets: list[Target], fixtures: Path) -> SeedReport:
    auth_target, profile_target = _owner(targets, "auth"), _owner(targets, "profile")
    engines = {t.name: async_engine(t.connection) for t in (auth_target, profile_target)}
    try:
        async with AsyncSession(engines[auth_target.name], expire_on_commit=False) as auth:
            if profile_target.name == auth_target.name:
                async with auth.begin():
                    return await seed(auth, auth, fixtures)
            # Separate databases: profiles commit after users; the seed is idempotent, so a run
            # interrupted between the two commits is completed by the next one.
            async with (AsyncSession(engines[profile_target.name]) as profile,
                        auth.begin(), profile.begin()):
                return await seed(auth, profile, fixtures)
    finally:
        for engine in engines.values():
            await engine.dispose()


def run_seed(targets: list[Target], fixtures: Path = FIXTURES) -> SeedReport:
    """Seed the users and profiles of the guide's section 4.1 into ``targets``."""
    return asyncio.run(_run(targets, fixtures))

"""The guide's seed data (section 4.1): three verified users, one per role, each with a profile.

Idempotent: a user whose email exists is left as it is (its password is not re-hashed), and a
profile is only created where none exists, so a second run writes nothing and reports so. It
writes through the repositories in one transaction, so ``user.created`` is audited like any
other registration. The transaction first takes an advisory lock in the auth database: two
seeds at once (two pipelines deploying together) run one after the other, and the second finds
the first's users instead of failing on their emails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, bindparam, func, literal_column, select

from shared_db.enums import UserRole
from shared_db.errors import ConfigError, MigrationError
from shared_db.observe import exempt_from_n_plus_one
from shared_db.sql import Query

if TYPE_CHECKING:
    from shared_db.client import Database

FIXTURES = Path(__file__).parent / "fixtures"
SEED_LOCK_KEY = 0x5EED_DB  # advisory lock of the seed transaction (any fixed number)
SEED_LOCK = Query.build("seed.lock", select(func.pg_advisory_xact_lock(
    bindparam("key", type_=BigInteger))))
# The table of each service the seed writes (the audit row of each user.created included).
WRITTEN = {"auth": "users", "profile": "user_profiles", "admin": "audit_logs"}
MIGRATED = {service: Query.build(f"seed.migrated.{service}", select(literal_column(
    f"to_regclass('{table}')"))) for service, table in WRITTEN.items()}


@dataclass
class SeedReport:
    users_created: list[str] = field(default_factory=list)
    users_existing: list[str] = field(default_factory=list)
    profiles_created: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.users_created or self.profiles_created)


def load_users(fixtures: Path = FIXTURES) -> list[dict[str, Any]]:
    """The users fixture, validated (every entry needs email, password, name and a known role)."""
    entries: list[dict[str, Any]] = json.loads((fixtures / "users.json").read_text())
    for index, entry in enumerate(entries):
        for key in ("email", "password", "name", "role"):
            if not entry.get(key):
                raise ConfigError(f"users.json[{index}].{key}", "is required")
        if entry["role"] not in UserRole.__members__:
            raise ConfigError(f"users.json[{index}].role",
                              f"must be one of {', '.join(UserRole.__members__)}")
    return entries


async def seed(db: Database, fixtures: Path = FIXTURES) -> SeedReport:
    """Write the seed users and profiles that are missing, in one transaction."""
    entries = load_users(fixtures)
    report = SeedReport()
    # Row by row on purpose: a handful of rows, each user's audit row and profile with it.
    with exempt_from_n_plus_one():
        await _write(db, entries, report)
    return report


async def _write(db: Database, entries: list[dict[str, Any]], report: SeedReport) -> None:
    async with db.transaction() as tx:
        for service, query in MIGRATED.items():  # asked, not failed on: no error logged
            async with tx.executor(service) as ex:
                if await ex.scalar(query, {}) is None:
                    raise MigrationError(f"cannot seed: the {service} service's table "
                                         f"{WRITTEN[service]} does not exist: run `shared-db "
                                         "migrate deploy` first")
        async with tx.executor("auth") as ex:
            await ex.execute(SEED_LOCK, {"key": SEED_LOCK_KEY})
        for entry in entries:
            user = await tx.users.get_by_email(entry["email"], include_deleted=True)
            if user is None:
                user = await tx.users.create(
                    email=entry["email"], password=entry["password"], name=entry["name"],
                    role=entry["role"], email_verified=bool(entry.get("email_verified")))
                report.users_created.append(user.email)
            else:
                report.users_existing.append(user.email)
            if await tx.profiles.get(user.id) is None:
                await tx.profiles.create(user.id, **(entry.get("profile") or {}))
                report.profiles_created += 1

"""The guide's seed data (section 4.1): three verified users, one per role, each with a profile.

Idempotent: a user whose email exists is left as it is (its password is not re-hashed), and a
profile is only created where none exists, so a second run writes nothing and reports so. It
writes through the repositories in one transaction, so ``user.created`` is audited like any
other registration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared_db.enums import UserRole
from shared_db.errors import ConfigError

if TYPE_CHECKING:
    from shared_db.client import Database

FIXTURES = Path(__file__).parent / "fixtures"


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
    async with db.transaction() as tx:
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
    return report

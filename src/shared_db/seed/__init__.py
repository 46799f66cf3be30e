"""The guide's seed data (section 4.1): three verified users, one per role, each with a profile.

Idempotent: a user whose email exists is left as it is (its password is not re-hashed), and a
profile is only created where none exists, so a second run writes nothing and reports so.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared_db.auth.repository import UserRepository
from shared_db.enums import UserRole
from shared_db.errors import ConfigError
from shared_db.passwords import hash_password
from shared_db.profile.repository import UserProfileRepository

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


async def seed(auth: AsyncSession, profile: AsyncSession,
               fixtures: Path = FIXTURES) -> SeedReport:
    """Write the seed users and profiles through the repositories; the caller commits.

    ``auth`` and ``profile`` are the same session in the shared topology.
    """
    report = SeedReport()
    users, profiles = UserRepository(auth), UserProfileRepository(profile)
    for entry in load_users(fixtures):
        existing = await users.get_by_email(entry["email"], include_deleted=True)
        if existing is not None:
            user_id = existing.id
            report.users_existing.append(entry["email"])
        else:
            password_hash = await asyncio.to_thread(hash_password, entry["password"])
            new_id = await users.add_if_absent({
                "email": entry["email"].lower(), "password_hash": password_hash,
                "name": entry["name"], "role": UserRole(entry["role"]),
                "email_verified": bool(entry.get("email_verified", False)),
            })
            if new_id is None:  # created by a concurrent seed since we looked
                found = await users.get_by_email(entry["email"], include_deleted=True)
                assert found is not None
                user_id = found.id
                report.users_existing.append(entry["email"])
            else:
                user_id = new_id
                report.users_created.append(entry["email"])
        if await profiles.add_if_absent(user_id, entry.get("profile") or {}):
            report.profiles_created += 1
    return report

"""Test users with precomputed password hashes.

bcrypt at cost 10 takes 50-70 ms of CPU per user, and the suite creates hundreds of users only as
setup, each test three times over (shared, per service, through PgBouncer). So the tests' passwords
are hashed once, here, at the cost the package uses; a user made with them still logs in with the
plain password. Tests of hashing itself (registration with ``password=``, bad passwords) pass the
password and let the package hash it.
"""

from __future__ import annotations

from typing import Any

from shared_db.client import Database
from shared_db.records import UserRecord

PASSWORD = "password1"
PASSWORD_HASH = "$2b$10$OdhEnw1aSDR5jKbbmYrmQOx49.Ls4ADFB2EKegiaSL3lg.1Iq7uZy"

CORRECT_HORSE = "correct horse"
CORRECT_HORSE_HASH = "$2b$10$ziunt7kIwVVAAbEhJOg4KuOH1YuplDhcuA6QzQkMae7pNdB1TJAda"


async def make_user(db: Database, email: str = "user@example.com", *, name: str = "U",
                    role: str = "CUSTOMER", password_hash: str = PASSWORD_HASH,
                    **kw: Any) -> UserRecord:
    """A registered user whose password is ``PASSWORD`` (``db`` may be a transaction)."""
    return await db.users.create(email=email, name=name, role=role, password_hash=password_hash,
                                 **kw)


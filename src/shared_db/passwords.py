"""Password hashing with bcrypt at the guide's cost factor."""

from __future__ import annotations

import bcrypt

BCRYPT_COST = 10
"""The guide's ``bcrypt.hash(password, 10)``."""


def hash_password(password: str, cost: int = BCRYPT_COST) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(password.encode(), password_hash.encode())

"""Repositories of the auth service."""

from shared_db.auth.batch import NewUser
from shared_db.auth.sessions import DeviceRepository, SessionRepository
from shared_db.auth.tokens import RefreshTokenRepository
from shared_db.auth.users import UserRepository

__all__ = [
    "DeviceRepository",
    "NewUser",
    "RefreshTokenRepository",
    "SessionRepository",
    "UserRepository",
]

"""Refresh tokens: issue, rotate, revoke, purge.

The ``token`` column holds the SHA-256 of the token, never the token: a copy of the database
does not hand out live sessions. The token itself (32 random bytes) is returned once, by
``issue`` and ``rotate``; lookups hash what the client presents and use the unique index
``refresh_tokens_token_key``.
The guide's table has no revoked flag: revoking deletes the row, and a rotated token stays, marked
used (``expires_at = created_at``) until ``purge_expired``, so its reuse can be detected.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import Interval, Text, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from shared_db import validation as check
from shared_db.admin.repository import AuditRepository
from shared_db.auth.models import RefreshToken, User, UserSession
from shared_db.errors import NotFoundError, TokenReusedError
from shared_db.records import IssuedToken, RefreshTokenRecord
from shared_db.repository import Repository
from shared_db.sql import Query, columns

_TOKEN = columns(RefreshTokenRecord, RefreshToken)
DEFAULT_TTL = timedelta(days=30)

ISSUE = Query.build("tokens.issue", insert(RefreshToken).from_select(
    ["id", "user_id", "token", "expires_at"],
    select(func.gen_random_uuid(), User.id, bindparam("hash", type_=Text),
           func.now() + bindparam("ttl", type_=Interval)).where(
        User.id == bindparam("user_id"), User.deleted_at.is_(None)),
).returning(*_TOKEN))
# A soft-deleted user's tokens are not found: a service checking a token with ``find`` must not
# let a deleted account in.
# (Asked beside the row rather than as a condition, which leaves the token's own unique index
# the way in whatever the planner thinks of a join.)
FIND = Query.build("tokens.find", select(*_TOKEN, select(User.id).where(
    User.id == RefreshToken.user_id, User.deleted_at.is_(None)).exists()).where(
    RefreshToken.token == bindparam("hash"), RefreshToken.expires_at > func.now()))
# A rotated token is kept, marked used by expiring it at its creation time (no live token can
# look like that: every TTL is positive), so a replay of it can be told from an unknown token.
CONSUME = Query.build("tokens.consume", update(RefreshToken).where(
    RefreshToken.token == bindparam("hash"), RefreshToken.expires_at > func.now(),
).values(expires_at=RefreshToken.created_at).returning(*_TOKEN))
USED = Query.build("tokens.used", select(RefreshToken.user_id).where(
    RefreshToken.token == bindparam("hash"),
    RefreshToken.expires_at == RefreshToken.created_at))
END_USER_SESSIONS = Query.build("tokens.end_user_sessions", delete(UserSession).where(
    UserSession.user_id == bindparam("user_id")))
MOVE_SESSIONS = Query.build("tokens.move_sessions", update(UserSession).where(
    UserSession.refresh_token_id == bindparam("old")).values(refresh_token_id=bindparam("new")))
REVOKE = Query.build("tokens.revoke", delete(RefreshToken).where(
    RefreshToken.token == bindparam("hash")))
REVOKE_ALL = Query.build("tokens.revoke_all", delete(RefreshToken).where(
    RefreshToken.user_id == bindparam("user_id")))
PURGE = Query.build("tokens.purge", delete(RefreshToken).where(
    RefreshToken.expires_at <= func.now()))


def token_hash(token: str) -> str:
    """What the ``token`` column stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


MAX_TTL = timedelta(days=3650)


class RefreshTokenRepository(Repository):
    service = "auth"

    async def issue(self, user_id: uuid.UUID, ttl: timedelta = DEFAULT_TTL) -> IssuedToken:
        """A new token for a live user. Raises NotFoundError for a missing or deleted user."""
        params = {"user_id": user_id, "ttl": check.positive_duration("ttl", ttl, maximum=MAX_TTL)}
        token = secrets.token_urlsafe(32)
        async with self._write() as ex:
            record = await ex.one(ISSUE, {**params, "hash": token_hash(token)},
                                  RefreshTokenRecord)
        if record is None:
            raise NotFoundError(f"user {user_id} does not exist or is deleted")
        return IssuedToken(token, record)

    async def find(self, token: str) -> RefreshTokenRecord | None:
        """The live (unexpired) token the client presented, or None (also when its user is
        soft-deleted). Read on the primary: a replica could still hold a revoked token."""
        async with self._fresh() as ex:
            found = await ex.row(FIND, {"hash": token_hash(check.text("token", token,
                                                                      max_length=512))})
        return RefreshTokenRecord(*found[:-1]) if found is not None and found[-1] else None

    async def rotate(self, token: str, ttl: timedelta = DEFAULT_TTL) -> IssuedToken:
        """Exchange a live token for a new one in one transaction; sessions follow it.

        Presenting a token that was already rotated is treated as theft (OAuth 2.0 Security
        BCP): the user's whole token family and sessions are revoked and ``TokenReusedError``
        is raised. Of two concurrent rotations of one token exactly one succeeds; the other is
        such a reuse. Call it on the Database (its own transaction) so the revocation commits
        even though the call fails.
        """
        check.text("token", token, max_length=512)
        check.positive_duration("ttl", ttl, maximum=MAX_TTL)
        async with self._source.unit() as tx, tx.executor(self.service) as ex:
            old = await ex.one(CONSUME, {"hash": token_hash(token)}, RefreshTokenRecord)
            if old is not None:
                new = await RefreshTokenRepository(tx).issue(old.user_id, ttl)
                await ex.execute(MOVE_SESSIONS, {"old": old.id, "new": new.record.id})
                return new
            replayed_by = await ex.scalar(USED, {"hash": token_hash(token)})
            if replayed_by is not None:
                # Reuse of a rotated token means it leaked: revoke the family (every token of
                # the user) and end the user's sessions; this transaction commits that.
                await ex.execute(REVOKE_ALL, {"user_id": replayed_by})
                await ex.execute(END_USER_SESSIONS, {"user_id": replayed_by})
                await AuditRepository(tx).append("auth.refresh_token_reused",
                                                 resource_type="user",
                                                 resource_id=replayed_by, user_id=replayed_by)
        if replayed_by is not None:
            raise TokenReusedError("refresh token was already used: every token and session "
                                   "of its user has been revoked")
        raise NotFoundError("refresh token is unknown or expired")

    async def revoke(self, token: str) -> bool:
        """Revoke one token; False when it did not exist."""
        check.text("token", token, max_length=512)
        async with self._write() as ex:
            return await ex.execute(REVOKE, {"hash": token_hash(token)}) > 0

    async def revoke_all(self, user_id: uuid.UUID) -> int:
        """Revoke every token of ``user_id`` (log out everywhere); how many there were."""
        async with self._write() as ex:
            return await ex.execute(REVOKE_ALL, {"user_id": user_id})

    async def purge_expired(self) -> int:
        async with self._write() as ex:
            return await ex.execute(PURGE, {})

"""Users: create, read with a safe projection, eager loads, soft delete, batch insert.

Emails are stored in lower case, so the guide's ``users_email_key`` makes them unique
case-insensitively. A soft-deleted user keeps its email: registering it again raises
``DuplicateError`` until the user is restored or deleted for good (the guide's unique key
covers every row, and reusing an address would let a new account inherit an old one's trail).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    select,
)

from shared_db import references
from shared_db import validation as check
from shared_db.admin.repository import APPEND as AUDIT_APPEND
from shared_db.admin.repository import AuditRepository
from shared_db.auth import lookups
from shared_db.auth.batch import (
    NewUser,
    audit_created,
    insert_returning,
    insert_rows,
    prepare_rows,
)
from shared_db.auth.details import update_details
from shared_db.auth.lookups import ID_IS, LIVE
from shared_db.auth.models import User
from shared_db.auth.statements import (
    CREATE,
    CREATE_AUDITED,
    HARD_DELETE,
    HASH_BY_EMAIL,
    RESTORE,
    ROLE_FOR_UPDATE,
    SET_ROLE,
    SOFT_DELETE,
    audited,
)
from shared_db.enums import UserRole
from shared_db.errors import DataAccessError, NotFoundError, ValidationError
from shared_db.idempotency import key, once
from shared_db.passwords import hash_password, verify_password
from shared_db.records import UserRecord, UserWithRelations
from shared_db.repository import Repository, Source
from shared_db.sql import Query


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Compared against when the email is unknown, so a login for a missing account costs as
    # much as one with a wrong password (no user enumeration by timing).
    return hash_password("not-a-real-password")


@lru_cache(maxsize=64)
def _fields_query(names: tuple[str, ...], include_deleted: bool) -> Query:
    statement = select(*[User.__table__.c[n] for n in names]).where(ID_IS)
    return Query.build("users.fields", statement if include_deleted else statement.where(LIVE))


class UserRepository(Repository):
    service = "auth"

    async def get(self, user_id: uuid.UUID, *, include_deleted: bool = False,
                  ) -> UserRecord | None:
        """The user (never its ``password_hash``), or None; soft-deleted ones only if asked."""
        return await self._lookup(lookups.BY_ID_ANY if include_deleted else lookups.BY_ID,
                                  user_id)

    async def get_one(self, user_id: uuid.UUID, *, include_deleted: bool = False) -> UserRecord:
        """Like ``get``; raises NotFoundError instead of returning None."""
        found = await self.get(user_id, include_deleted=include_deleted)
        if found is None:
            raise NotFoundError(f"user {user_id} does not exist")
        return found

    async def get_by_email(self, email: str, *, include_deleted: bool = False,
                           ) -> UserRecord | None:
        """The user with ``email`` (any case), or None."""
        address = check.email(email)
        return await self._lookup(lookups.EMAIL_ANY if include_deleted else lookups.EMAIL,
                                  address)

    async def get_fields(self, user_id: uuid.UUID, *fields: str,
                         include_deleted: bool = False) -> dict[str, Any] | None:
        """Only the named columns (guide 5.2 ``select``); ``password_hash`` only when named."""
        known = User.__table__.c.keys()
        names = tuple(dict.fromkeys(fields))
        if not names:
            raise ValidationError("fields", "name at least one column")
        for name in names:
            if name not in known:
                raise ValidationError("fields", f"{name!r} is not a column of users; "
                                      f"choose from {', '.join(known)}")
        async with self._read() as ex:
            row = await ex.row(_fields_query(names, include_deleted), {"id": user_id})
        return None if row is None else dict(zip(names, row, strict=True))

    async def verify_password(self, email: str, password: str) -> UserRecord | None:
        """The user when ``password`` matches, else None (same cost whether or not it exists).

        ``password`` follows the rule of ``create`` (at most 72 bytes, never cut) but may be
        shorter than 8 bytes, for accounts imported with a ``password_hash``.
        """
        address = check.email(email)
        secret = check.password(password, minimum=1)
        # On the primary, user and hash in one read: a replica may still hold the password
        # before a change, or not yet the account.
        async with self._fresh() as ex:
            found = await ex.row(HASH_BY_EMAIL, {"email": address})
        stored = None if found is None else found[0]
        try:
            matches = await asyncio.to_thread(verify_password, secret, stored or _dummy_hash())
        except ValueError:  # only a row written around the API can hold a non-bcrypt hash
            raise DataAccessError("the stored password_hash of this user is not a bcrypt "
                                  "hash; set a new password") from None
        return UserRecord(*found[1:]) if matches and found is not None and stored else None

    async def create(self, *, email: str, name: str, role: UserRole | str,
                     password: str | None = None, password_hash: str | None = None,
                     email_verified: bool = False,
                     idempotency_key: str | None = None) -> UserRecord:
        """Register a user and audit ``user.created`` in the same transaction.

        Give ``password`` (hashed here with bcrypt, cost 10) or an existing bcrypt
        ``password_hash`` (imports, migrations from another system). ``idempotency_key``
        makes the registration exactly once (``shared_db.idempotency``): a repeat with the same
        key returns the user the first call created.

        Raises:
            ValidationError: a field breaks its rule.
            DuplicateError: the email is taken (also by a soft-deleted user).
            IdempotencyKeyReusedError: the key was first used with other arguments.
        """
        params = await self._new_user(email=email, name=name, role=role, password=password,
                                     password_hash=password_hash, email_verified=email_verified)
        if idempotency_key is not None:
            return await once(self._source.unit, self.service, key(idempotency_key), "users.create",
                              user_request(params), lambda tx: UserRepository(tx)._insert(params))
        return await self._insert(params)

    async def _insert(self, params: dict[str, Any]) -> UserRecord:
        async with self._source.unit() as tx:
            audit = self._created_audit(tx, params)
            if not tx.same_database(self.service, "admin"):
                async with tx.executor(self.service) as ex:
                    user = await ex.one(CREATE, params, UserRecord)
                async with tx.executor("admin") as ex:
                    await ex.execute(AUDIT_APPEND, audit)
            else:  # one statement for both rows
                async with tx.executor(self.service) as ex:
                    user = await ex.one(CREATE_AUDITED, audited(params, audit), UserRecord)
        assert user is not None
        return user

    async def _new_user(self, *, email: str, name: str, role: UserRole | str,
                       password: str | None = None, password_hash: str | None = None,
                       email_verified: bool = False) -> dict[str, Any]:
        """Validated parameters of ``CREATE`` for a new user, with its id and password hash."""
        params: dict[str, Any] = {
            "id": uuid.uuid4(), "email": check.email(email),
            "name": check.text("name", name, max_length=200),
            "role": check.member("role", role, UserRole),
            "email_verified": check.flag("email_verified", email_verified),
        }
        if (password is None) == (password_hash is None):
            raise ValidationError("password", "give either password or password_hash")
        if password_hash is not None:
            params["password_hash"] = check.password_hash(password_hash)
        else:
            params["password_hash"] = await asyncio.to_thread(
                hash_password, check.password(password))
        return params

    def _created_audit(self, tx: Source, params: dict[str, Any]) -> dict[str, Any]:
        """The audit row of a new user (the acting user, else the new user itself)."""
        return AuditRepository(tx)._params("user.created", **_about_user(
            tx, params["id"], {"email": params["email"], "role": params["role"].value}))

    async def soft_delete(self, user_id: uuid.UUID) -> UserRecord:
        """Hide the user from every read (guide 11.1); audited as ``user.soft_deleted``."""
        return await self._flip(SOFT_DELETE, user_id, "user.soft_deleted")

    async def restore(self, user_id: uuid.UUID) -> UserRecord:
        """Undo ``soft_delete``; audited as ``user.restored``."""
        return await self._flip(RESTORE, user_id, "user.restored")

    async def _flip(self, query: Query, user_id: uuid.UUID, action: str) -> UserRecord:
        async with self._source.unit() as tx:
            async with tx.executor(self.service) as ex:
                user = await ex.one(query, {"id": user_id}, UserRecord)
            if user is None:
                state = "not deleted" if action == "user.restored" else "already deleted"
                raise NotFoundError(f"user {user_id} does not exist or is {state}")
            await _audit(tx, action, user_id)
        return user

    async def set_role(self, user_id: uuid.UUID, role: UserRole | str) -> UserRecord:
        """Change the role; audited as ``user.role_changed`` with the old and new role. The
        role the user has already changes nothing (no write, no audit row), as ``update``."""
        new_role = check.member("role", role, UserRole)
        async with self._source.unit() as tx:
            async with tx.executor(self.service) as ex:
                current = await ex.one(ROLE_FOR_UPDATE, {"id": user_id}, UserRecord)
                if current is None:
                    raise NotFoundError(f"user {user_id} does not exist")
                if current.role == new_role:
                    return current
                user = await ex.one(SET_ROLE, {"id": user_id, "role": new_role}, UserRecord)
            assert user is not None
            await _audit(tx, "user.role_changed", user_id,
                         {"old": current.role.value, "new": new_role.value})
        return user

    async def update(self, user_id: uuid.UUID, *, name: str | None = None,
                     email_verified: bool | None = None) -> UserRecord:
        """Change a live user's name or email_verified; audited as ``user.updated``."""
        return await update_details(self._source, user_id, name, email_verified)

    async def delete(self, user_id: uuid.UUID) -> None:
        """Delete for good: profile, tokens, devices and sessions go with it (cascade).

        Raises:
            ForeignKeyError: the user has payments, which must never vanish with a user.
            NotFoundError: no such user.
        """
        async with self._source.unit() as tx:
            if tx.same_database(self.service, "payments") and tx.same_database(
                    self.service, "profile"):
                async with tx.executor(self.service) as ex:
                    if not await ex.execute(HARD_DELETE, {"id": user_id}):
                        raise NotFoundError(f"user {user_id} does not exist")
            else:
                await references.delete_user(tx, user_id)
            await _audit(tx, "user.deleted", user_id)

    async def create_many(self, users: Iterable[NewUser], *, skip_duplicates: bool = True,
                          ) -> int:
        """Insert many users with COPY and one INSERT (guide 6.1 ``createMany``), each with
        its ``user.created`` audit row in the same transaction.

        With ``skip_duplicates``, rows whose email exists are skipped. Returns the number of
        users inserted. Every row is validated before anything is written.
        """
        try:
            given = list(users)
        except (OverflowError, ValueError, TypeError) as exc:  # e.g. a __len__ that lies
            raise ValidationError("users", f"must be an iterable of NewUser that can be read "
                                  f"({type(exc).__name__})") from None
        rows = await prepare_rows(given)
        if not rows:
            return 0
        async with self._source.unit() as tx:
            actor = tx.actor()
            if tx.same_database(self.service, "admin"):
                async with tx.executor(self.service) as ex:
                    return await insert_rows(ex, rows, skip_duplicates, actor)
            async with tx.executor(self.service) as ex:
                created = await insert_returning(ex, rows, skip_duplicates)
            if created:
                async with tx.executor("admin") as ex:
                    await audit_created(ex, created, actor)
            return len(created)

    async def eager(self, user_id: uuid.UUID, *, payments: int = 10) -> UserWithRelations | None:
        """The guide's ``include``: user, profile and newest payments, in one statement."""
        check.positive_int("payments", payments, maximum=100)
        return await self._lookup(lookups.eager(payments), user_id)

    async def eager_many(self, user_ids: Sequence[uuid.UUID], *, payments: int = 10,
                         ) -> list[UserWithRelations]:
        """``eager`` for many users, still one statement whatever the list's length.

        Each distinct id is answered once, in the order of its first appearance; missing and
        soft-deleted users are left out.
        """
        check.positive_int("payments", payments, maximum=100)
        distinct = list(dict.fromkeys(check.identifiers("user_ids", user_ids)))
        return await lookups.eager_load(self._source, distinct, payments)


def _about_user(tx: Source, subject: uuid.UUID,
                details: dict[str, Any] | None = None) -> dict[str, Any]:
    # Without an acting user (self-registration, scripts) the row names the user it is about.
    return {"resource_type": "user", "resource_id": subject, "details": details,
            "user_id": tx.actor().actor_id or subject}


async def _audit(tx: Source, action: str, subject: uuid.UUID,
                 details: dict[str, Any] | None = None) -> None:
    await AuditRepository(tx).append(action, **_about_user(tx, subject, details))


def user_request(params: dict[str, Any]) -> dict[str, Any]:
    """What an idempotency key compares of a new user: everything but its id and password."""
    return {k: v for k, v in params.items() if k not in ("id", "password_hash")}

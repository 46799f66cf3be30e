"""``create_many`` (guide 6.1 ``createMany``): rows validated first, then COPY and one INSERT.

The rows are staged with COPY (the fastest way in) into a temporary table dropped at commit, so
it is safe behind transaction pooling, then inserted in one statement that can skip duplicates.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, MetaData, Table, Text, cast, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.schema import CreateTable

from shared_db import validation as check
from shared_db.auth.models import User
from shared_db.enums import UserRole, pg_enum
from shared_db.errors import ValidationError
from shared_db.passwords import hash_password
from shared_db.sql import Executor, Query

_stage = Table("shared_db_user_stage", MetaData(), Column("email", Text),
               Column("password_hash", Text), Column("name", Text), Column("role", Text),
               Column("email_verified", Boolean), prefixes=["TEMPORARY"],
               postgresql_on_commit="DROP")
_BATCH_COLUMNS = ["email", "password_hash", "name", "role", "email_verified"]
CREATE_STAGE = Query("users.create_many.stage", str(CreateTable(_stage).compile(
    dialect=postgresql.dialect())))  # type: ignore[no-untyped-call]
COPY_STAGE = Query("users.create_many.copy", "COPY shared_db_user_stage "
                   "(email, password_hash, name, role, email_verified) FROM STDIN")
_staged = select(_stage.c.email, _stage.c.password_hash, _stage.c.name,
                 cast(_stage.c.role, pg_enum(UserRole)), _stage.c.email_verified)
# include_defaults=False: ids and timestamps come from the database defaults, not from Python.
CREATE_MANY = Query.build("users.create_many", insert(User).from_select(
    _BATCH_COLUMNS, _staged, include_defaults=False).on_conflict_do_nothing())
CREATE_MANY_STRICT = Query.build("users.create_many_strict", insert(User).from_select(
    _BATCH_COLUMNS, _staged, include_defaults=False))

@dataclass(frozen=True, slots=True)
class NewUser:
    """One user for ``create_many``: give ``password`` (hashed here) or ``password_hash``."""

    email: str
    name: str
    role: UserRole | str
    password: str | None = None
    password_hash: str | None = None
    email_verified: bool = False



def _row(index: int, user: NewUser) -> list[Any]:
    email = check.email(user.email, f"users[{index}].email")
    name = check.text(f"users[{index}].name", user.name, max_length=200)
    role = check.member(f"users[{index}].role", user.role, UserRole)
    if user.password_hash is not None:
        hashed: str | None = check.text(f"users[{index}].password_hash", user.password_hash,
                                        max_length=200)
    elif user.password is not None:
        check.password(user.password, f"users[{index}].password")
        hashed = None  # hashed below, off the event loop
    else:
        raise ValidationError(f"users[{index}]", "give password or password_hash")
    return [email, hashed, name, role.value, bool(user.email_verified)]


async def prepare_rows(users: list[NewUser]) -> list[list[Any]]:
    """Every row validated (all before any is written), plain passwords hashed."""
    rows = [_row(i, u) for i, u in enumerate(users)]
    for row, user in zip(rows, users, strict=True):
        if row[1] is None:
            row[1] = await asyncio.to_thread(hash_password, str(user.password))
    return rows






async def insert_rows(ex: Executor, rows: list[list[Any]], skip_duplicates: bool) -> int:
    """Stage ``rows`` and insert them; the number of rows inserted."""
    await ex.execute(CREATE_STAGE, {})
    await ex.copy_rows(COPY_STAGE, rows)
    return await ex.execute(CREATE_MANY if skip_duplicates else CREATE_MANY_STRICT, {})

"""``create_many`` (guide 6.1 ``createMany``): rows validated first, then COPY and one INSERT.

The rows are staged with COPY (the fastest way in) into a temporary table dropped at commit, so
it is safe behind transaction pooling, then inserted in one statement that can skip duplicates.
That statement also writes one ``user.created`` audit row per user it inserted (a data-modifying
CTE), so the batch keeps its round trips. Per service, ``audit_logs`` is in the admin database
and the batch commits in two phases, which PostgreSQL refuses for a transaction that touched a
temporary table: there the rows go as arrays in one INSERT that returns the new users, and their
audit rows follow in one statement on the admin database.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.schema import CreateTable

from shared_db import validation as check
from shared_db.admin.models import AuditLog
from shared_db.auth.models import User
from shared_db.context import ActorContext
from shared_db.enums import UserRole, pg_enum
from shared_db.errors import ValidationError
from shared_db.passwords import hash_password
from shared_db.sql import Executor, Query, every

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
_AUDIT_COLUMNS = ["id", "user_id", "action", "resource_type", "resource_id", "details",
                  "ip_address", "user_agent"]


def _audited(new: Any) -> Any:
    """``user.created`` rows for the users in ``new`` (columns id, email, role), as
    ``users.create`` writes them: by the acting user, else by the user itself."""
    return select(func.gen_random_uuid(), func.coalesce(bindparam("actor_id", type_=Uuid),
                                                        new.c.id),
                  literal_column("'user.created'"), literal_column("'user'"),
                  cast(new.c.id, Text), func.jsonb_build_object(
                      literal_column("'email'"), new.c.email, literal_column("'role'"),
                      cast(new.c.role, Text)),
                  bindparam("ip_address", type_=Text), bindparam("user_agent", type_=Text))


_arrays = func.unnest(*(bindparam(c, type_=ARRAY(t)) for c, t in zip(
    _BATCH_COLUMNS, (Text, Text, Text, Text, Boolean), strict=True))).table_valued(
    *_BATCH_COLUMNS).render_derived(name="given")
_given_rows = select(_arrays.c.email, _arrays.c.password_hash, _arrays.c.name,
                     cast(_arrays.c.role, pg_enum(UserRole)), _arrays.c.email_verified)


def _create_many(skip_duplicates: bool, staged: bool) -> Query:
    # include_defaults=False: ids and timestamps come from the database defaults, not Python.
    statement = insert(User).from_select(_BATCH_COLUMNS, _staged if staged else _given_rows,
                                         include_defaults=False)
    if skip_duplicates:
        statement = statement.on_conflict_do_nothing()
    created = statement.returning(User.id, User.email, User.role)
    name = "users.create_many" + ("" if skip_duplicates else "_strict")
    if not staged:
        return Query.build(name + ".arrays", created)
    new = created.cte("created")
    return Query.build(name, insert(AuditLog).from_select(_AUDIT_COLUMNS, _audited(new)))


CREATE_MANY = {(skip, staged): _create_many(skip, staged)
               for skip in (False, True) for staged in (False, True)}
_given = func.unnest(bindparam("ids", type_=ARRAY(Uuid)), bindparam("emails", type_=ARRAY(Text)),
                     bindparam("roles", type_=ARRAY(Text))).table_valued(
    "id", "email", "role").render_derived(name="created")
AUDIT_MANY = Query.build("users.create_many.audit", insert(AuditLog).from_select(
    _AUDIT_COLUMNS, _audited(_given)))


@dataclass(frozen=True, slots=True)
class NewUser:
    """One user for ``create_many``: give ``password`` (hashed here) or ``password_hash``."""

    email: str
    name: str
    role: UserRole | str
    password: str | None = None
    password_hash: str | None = None
    email_verified: bool = False


def _row(index: int, user: object) -> list[Any]:
    try:
        return _fields(user)
    except ValidationError as exc:
        # Named here, on failure only: building users[i].email for each of 10,000 valid rows
        # cost a tenth of the validation.
        raise ValidationError(f"users[{index}]{exc.field}", exc.rule) from None


def _fields(user: object) -> list[Any]:
    if not isinstance(user, NewUser):
        raise ValidationError("", f"must be a NewUser, got {type(user).__name__}")
    email = check.email(user.email, ".email")
    name = check.text(".name", user.name, max_length=200)
    role = check.member(".role", user.role, UserRole)
    verified = check.flag(".email_verified", user.email_verified)
    if (user.password is None) == (user.password_hash is None):
        raise ValidationError("", "give either password or password_hash")
    if user.password_hash is not None:
        hashed: str | None = check.password_hash(user.password_hash, ".password_hash")
    else:
        check.password(user.password, ".password")
        hashed = None  # hashed below, off the event loop
    return [email, hashed, name, role.value, verified]


async def prepare_rows(users: list[Any]) -> list[list[Any]]:
    """Every row validated (all before any is written), plain passwords hashed."""
    rows = [_row(i, u) for i, u in enumerate(users)]
    for row, user in zip(rows, users, strict=True):
        if row[1] is None:
            row[1] = await asyncio.to_thread(hash_password, str(user.password))
    return rows


def audit_params(actor: ActorContext) -> dict[str, Any]:
    return {"actor_id": actor.actor_id, "ip_address": actor.ip_address,
            "user_agent": actor.user_agent}


async def insert_rows(ex: Executor, rows: list[list[Any]], skip_duplicates: bool,
                      actor: ActorContext) -> int:
    """Stage ``rows``, insert them with their audit rows; the number of users inserted."""
    await ex.execute(CREATE_STAGE, {})
    await ex.copy_rows(COPY_STAGE, rows)
    return await ex.execute(CREATE_MANY[skip_duplicates, True], audit_params(actor))


async def insert_returning(ex: Executor, rows: list[list[Any]], skip_duplicates: bool,
                           ) -> list[tuple[uuid.UUID, str, Any]]:
    """Insert ``rows`` (sent as arrays); the id, email and role of each user inserted."""
    columns = dict(zip(_BATCH_COLUMNS, (list(c) for c in zip(*rows, strict=True)), strict=True))
    query = CREATE_MANY[skip_duplicates, False]
    return await every(await ex.cursor(query, columns), query.name)


async def audit_created(ex: Executor, created: list[tuple[uuid.UUID, str, Any]],
                        actor: ActorContext) -> None:
    """The audit rows of ``insert_returning``'s users, in one statement."""
    ids, emails, roles = (list(column) for column in zip(*created, strict=True))
    await ex.execute(AUDIT_MANY, {"ids": ids, "emails": emails,
                                  "roles": [str(getattr(r, "value", r)) for r in roles]}
                     | audit_params(actor))

"""The users table's statements, and the one that writes a new user with its audit row.

Where users and audit_logs share a database, ``users.create`` writes both rows in one statement
(a data-modifying CTE): atomic on its own and one round trip, with no pipeline whose abort after
a refusal (a taken email) psycopg would log as a warning. ``users.create_with_profile`` adds the
profile to the same statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, null, select, update
from sqlalchemy.dialects.postgresql import insert

from shared_db.admin.models import AuditLog
from shared_db.auth.lookups import EMAIL_IS, ID_IS, LIVE, USER_COLUMNS
from shared_db.auth.models import User
from shared_db.sql import Query

HASH_BY_EMAIL = Query.build("users.hash_by_email", select(
    User.password_hash, *USER_COLUMNS).where(EMAIL_IS, LIVE))
_NEW_FIELDS = ("id", "email", "password_hash", "name", "role", "email_verified")
_INSERT_USER = insert(User).values(**{n: bindparam(n) for n in _NEW_FIELDS}).returning(
    *USER_COLUMNS)
CREATE = Query.build("users.create", _INSERT_USER)
NEW_USER = _INSERT_USER.cte("new_user")
_AUDIT_FIELDS = ("user_id", "action", "resource_type", "resource_id", "details", "ip_address",
                 "user_agent")
# created_at: when the row is written (clock_timestamp), not when its transaction began (the
# column's now()): a change that waited for a row lock is then listed after the one it waited on.
AUDITED = insert(AuditLog).values(id=func.gen_random_uuid(), created_at=func.clock_timestamp(), **{
    n: bindparam(f"audit_{n}") for n in _AUDIT_FIELDS}).cte("audited")
CREATE_AUDITED = Query.build("users.create", select(*NEW_USER.c).add_cte(AUDITED))
SOFT_DELETE = Query.build("users.soft_delete", update(User).where(ID_IS, LIVE).values(
    deleted_at=func.now(), updated_at=func.now()).returning(*USER_COLUMNS))
RESTORE = Query.build("users.restore", update(User).where(
    ID_IS, User.deleted_at.is_not(None)).values(deleted_at=null(), updated_at=func.now(),
                                                 ).returning(*USER_COLUMNS))
ROLE_FOR_UPDATE = Query.build("users.role_for_update", select(*USER_COLUMNS).where(
    ID_IS, LIVE).with_for_update())
SET_ROLE = Query.build("users.set_role", update(User).where(ID_IS).values(
    role=bindparam("role"), updated_at=func.now()).returning(*USER_COLUMNS))
HARD_DELETE = Query.build("users.delete", delete(User).where(ID_IS))


def audited(params: dict[str, Any], audit: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``CREATE_AUDITED`` (and of statements built on ``NEW_USER`` and
    ``AUDITED``): the user's, and its audit row's prefixed with ``audit_``."""
    return params | {f"audit_{n}": v for n, v in audit.items()}

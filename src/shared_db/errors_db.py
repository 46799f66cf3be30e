"""Driver errors become shared-db errors here, keyed on SQLSTATE and constraint names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg
from psycopg_pool import PoolTimeout

from shared_db.errors import (
    DataAccessError,
    DatabaseUnavailableError,
    DuplicateError,
    ForeignKeyError,
    PoolTimeoutError,
    QueryTimeoutError,
    TransientConflictError,
    ValidationError,
)

UNIQUE_FIELDS = {
    "users_email_key": "email",
    "refresh_tokens_token_key": "token",
    "devices_device_id_key": "device_id",
    "user_profiles_user_id_key": "user_id",
    "system_config_pkey": "key",
}


def _constraint(exc: psycopg.Error) -> str:
    return exc.diag.constraint_name or "unknown constraint"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (a SQLAlchemy wrapper's: its driver error's)."""
    source = getattr(exc, "orig", None) or exc
    return (str(source).strip().splitlines() or [type(source).__name__])[0]


def translate_error(exc: BaseException) -> BaseException:
    """The shared-db error for a psycopg error (or ``exc`` itself when there is none)."""
    if isinstance(exc, pg.UniqueViolation):
        name = _constraint(exc)
        field = UNIQUE_FIELDS.get(name)
        return DuplicateError(f"{field or name}: already exists ({name})", field)
    if isinstance(exc, (pg.ForeignKeyViolation, pg.RestrictViolation)):
        return ForeignKeyError(f"{_constraint(exc)}: {exc.diag.message_detail or first_line(exc)}")
    if isinstance(exc, (pg.CheckViolation, pg.NotNullViolation)):
        column = exc.diag.column_name or _constraint(exc)
        return ValidationError(column, first_line(exc))
    if isinstance(exc, (pg.DataError, pg.InvalidTextRepresentation)):
        return ValidationError(exc.diag.column_name or "value", first_line(exc))
    if isinstance(exc, pg.QueryCanceled):
        return QueryTimeoutError(f"statement timeout: {first_line(exc)}")
    if isinstance(exc, pg.LockNotAvailable):
        return QueryTimeoutError(f"lock timeout: {first_line(exc)}")
    if isinstance(exc, (pg.SerializationFailure, pg.DeadlockDetected)):
        return TransientConflictError(f"{type(exc).__name__}: {first_line(exc)}")
    if isinstance(exc, PoolTimeout):
        return PoolTimeoutError(f"no pooled connection became free within pool_timeout "
                                f"({first_line(exc)}); raise connection_limit or pool_timeout")
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailableError(first_line(exc))
    if isinstance(exc, psycopg.Error):
        return DataAccessError(f"{type(exc).__name__}: {first_line(exc)}")
    return exc


@contextmanager
def translate() -> Iterator[None]:
    """Re-raise psycopg errors as shared-db errors, chained to the original."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        raise translate_error(exc) from exc

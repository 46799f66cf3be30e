"""Driver errors become shared-db errors here, keyed on SQLSTATE and constraint names."""

from __future__ import annotations

import re
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
    SharedDbError,
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


# Classes whose first line names only database objects (constraints, tables, columns): the
# values are in DETAIL. So does 42's (syntax, privileges, undefined objects), which quotes at
# most the statement's own text: parameters are bound apart from it. A data exception's first
# line quotes the value itself.
_OBJECT_ONLY = ("23", "40", "55", "57")
REFUSALS = ("23",)
"""SQLSTATE classes of refusals a caller expects (a taken email, a missing reference)."""


def server_message(exc: BaseException) -> str:
    """What the server said, without any value from the statement's rows or parameters:
    the first line when it names only objects, else the condition and its SQLSTATE."""
    state = getattr(exc, "sqlstate", None)
    if state is not None and state[:2] == "42":  # what is wrong, and which object
        return f"{type(exc).__name__}: {first_line(exc)}"
    if state is None or state[:2] in _OBJECT_ONLY:
        return first_line(exc)
    return f"{type(exc).__name__} (SQLSTATE {state})"


def event_error(exc: BaseException, with_values: bool) -> str:
    """The error text of a query event: all of it, DETAIL included, only when parameters may
    be shown (``SHARED_DB_LOG_PARAMS``); otherwise ``server_message``."""
    return str(exc) if with_values else server_message(exc)


def translate_error(exc: BaseException) -> BaseException:
    """The shared-db error for a psycopg error (or ``exc`` itself when there is none), naming
    the driver's class in ``driver_error``.

    Callers raise it ``from None``: a chained cause prints the server's DETAIL in every logged
    traceback (``Key (email)=(a@example.com) already exists``), the values this error's own
    text leaves out. The driver's error stays in ``__context__`` for code that asks for it.
    """
    found = _translated(exc)
    if isinstance(found, SharedDbError):
        found.driver_error = type(exc).__name__
    return found


def _translated(exc: BaseException) -> BaseException:
    if isinstance(exc, pg.UniqueViolation):
        name = _constraint(exc)
        field = UNIQUE_FIELDS.get(name)
        return DuplicateError(f"{field or name}: already exists ({name})", field)
    if isinstance(exc, (pg.ForeignKeyViolation, pg.RestrictViolation)):
        return ForeignKeyError(f"{_constraint(exc)}: {server_message(exc)}")
    if isinstance(exc, (pg.CheckViolation, pg.NotNullViolation)):
        column = exc.diag.column_name or _constraint(exc)
        return ValidationError(column, first_line(exc))
    if isinstance(exc, (pg.DataError, pg.InvalidTextRepresentation)):
        return ValidationError(exc.diag.column_name or "value", server_message(exc))
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
        return DataAccessError(server_message(exc))
    return exc


@contextmanager
def translate() -> Iterator[None]:
    """Re-raise psycopg errors as shared-db errors (``translate_error``)."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        raise translate_error(exc) from None


REFUSED, TIMED_OUT, AUTH_FAILED = "refused", "timed out", "authentication failed"
NO_DATABASE, UNKNOWN_HOST, UNREACHABLE = "database does not exist", "unknown host", "unreachable"
NOT_PERMITTED = "not permitted to connect"
WRONG_ROLE = "no host has the role target_session_attrs asks for"
NO_SSL = "the server does not accept SSL"
NO_OPTIONS = "PgBouncer refuses the startup parameter options"
_CAUSES = (  # libpq's and psycopg's wording; connection errors carry no SQLSTATE client-side
    # First: of a multi-host URL's errors (one line per host), a host that answered in the
    # wrong role (no primary during a failover) says more than another that refused.
    (re.compile(r"session is (not )?read-only|server is (not )?in hot standby mode"),
     WRONG_ROLE),
    (re.compile(r"server does not support ssl"), NO_SSL),
    (re.compile(r"unsupported startup parameter: options"), NO_OPTIONS),
    (re.compile(r"connection refused"), REFUSED),
    (re.compile(r"timeout expired|timed out"), TIMED_OUT),
    (re.compile(r"authentication failed|no password supplied|role \".*\" does not exist"
                r"|no pg_hba\.conf entry"), AUTH_FAILED),
    (re.compile(r"database \".*\" does not exist"), NO_DATABASE),
    (re.compile(r"permission denied for database"), NOT_PERMITTED),
    (re.compile(r"resolve host|translate host name|name or service not known"
                r"|nodename nor servname"), UNKNOWN_HOST),
)


def connection_cause(exc: BaseException) -> str:
    """Why a connection attempt failed, in words: ``refused``, ``timed out``, ``authentication
    failed``, ``database does not exist``, ``unknown host``, ``not permitted to connect``,
    ``WRONG_ROLE``, ``NO_SSL``, ``NO_OPTIONS``, or else ``unreachable``."""
    source = getattr(exc, "orig", None) or exc
    if isinstance(source, pg.ConnectionTimeout):
        return TIMED_OUT
    text = str(source).lower()
    return next((cause for pattern, cause in _CAUSES if pattern.search(text)), UNREACHABLE)


def unreachable(where: str, exc: BaseException, secret: str | None = None,
                ) -> DatabaseUnavailableError:
    """The error for a failed connection attempt to ``where`` (a URL without its password),
    naming the cause; ``secret`` is blanked out should the driver's text ever carry it."""
    detail = first_line(exc)
    if secret:
        detail = detail.replace(secret, "***")
    return DatabaseUnavailableError(f"cannot connect to {where}: {connection_cause(exc)} "
                                    f"({detail})")

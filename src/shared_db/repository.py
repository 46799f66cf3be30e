"""What every repository shares: an ``AsyncSession`` it flushes but never commits, and one place
where database errors become shared-db errors, keyed on the constraint names of the naming
convention (``users_email_key`` -> ``DuplicateError``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared_db.errors import DataAccessError, DuplicateError, ForeignKeyError

UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATIONS = ("23503", "23001")  # foreign_key_violation, restrict_violation


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Re-raise integrity errors as ``DuplicateError`` or ``ForeignKeyError`` by constraint."""
    try:
        yield
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or "unknown constraint"
        detail = getattr(diag, "message_detail", None) or str(exc.orig)
        code = getattr(exc.orig, "sqlstate", None)
        if code == UNIQUE_VIOLATION:
            raise DuplicateError(f"{constraint}: {detail}") from exc
        if code in FOREIGN_KEY_VIOLATIONS:
            raise ForeignKeyError(f"{constraint}: {detail}") from exc
        raise DataAccessError(f"{constraint}: {detail}") from exc


class Repository:
    """Base of the per-service repositories; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

"""The one error hierarchy of shared-db: every failure a caller can act on is one of these."""

from __future__ import annotations

from shared_db.redact import redact


class SharedDbError(Exception):
    """Root of every error shared-db raises on purpose.

    Its text never shows a password: a message quoting a URL, a conninfo string or a driver
    error has the password replaced by ``***`` in ``str``, ``repr`` and ``args``.
    """

    driver_error: str | None = None
    """The driver's error class this one stands for (``UniqueViolation``), when it does."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))

    def __str__(self) -> str:
        return redact(super().__str__())

    def __repr__(self) -> str:
        return redact(super().__repr__())


class FieldRuleError(SharedDbError):
    """An input broke a rule: ``field`` names the input, ``rule`` what it must satisfy."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = redact(rule)


class ConfigError(FieldRuleError):
    """A setting (environment variable or URL parameter) is missing or invalid, e.g.
    ``DATABASE_URL`` or ``connection_limit``."""


class DatabaseUnavailableError(SharedDbError):
    """The server could not be reached, refused the connection, or the connection was lost.

    Raised as this class itself, nothing was committed: the call may simply be made again.
    """


class OutcomeUnknownError(DatabaseUnavailableError):
    """The connection was lost after a COMMIT (or a single-statement write) was sent and before
    its reply: the write may or may not have happened. It is never re-sent by shared-db; call
    again with the same ``idempotency_key`` to get its result exactly once."""


class EmbeddedServerError(SharedDbError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""


class MigrationError(SharedDbError):
    """A migration command cannot proceed (unknown revision, duplicate name, failed step)."""


class DriftError(MigrationError):
    """The database schema differs from what the migrations produce."""


class AdoptionRefusedError(MigrationError):
    """``migrate adopt`` will not convert this database (not made by Prisma Migrate, already
    adopted, a value that cannot be converted); nothing was changed.

    Attributes:
        problems: one line per reason.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = [redact(p) for p in problems or []]


class AdoptionMismatchError(AdoptionRefusedError):
    """``migrate adopt`` converted the database, found its data or schema different from what
    it must be, and rolled the whole conversion back; ``problems`` lists the differences."""


class AdoptionFailedError(MigrationError):
    """A statement of ``migrate adopt``'s conversion failed; the whole transaction was rolled
    back and nothing was changed."""


class UnsafeMigrationError(MigrationError):
    """``deploy`` refused a migration the safety lint flags on a table that holds rows, and
    whose file does not acknowledge that rule; nothing of that migration was applied."""


class LockTimeoutError(MigrationError):
    """A migration step could not take its locks within ``lock_timeout``, after every retry;
    the database was left at the migration before it."""


class ConfirmationRequired(SharedDbError):
    """A destructive command needs an explicit confirmation that was not given."""


class BackupError(SharedDbError):
    """A backup could not be made, verified or restored; the target was left as it was."""


class DataAccessError(SharedDbError):
    """A read or write through a repository failed."""


class ClientClosedError(DataAccessError):
    """The ``Database`` was used before ``open`` or after ``close``."""


class NotFoundError(DataAccessError):
    """The requested row does not exist (or is soft-deleted)."""


class DuplicateError(DataAccessError):
    """A unique constraint was violated.

    Attributes:
        field: the column the constraint keeps unique (``email``), when known.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ForeignKeyError(DataAccessError):
    """A referenced row is missing, or a referencing row blocks a delete."""


class ValidationError(FieldRuleError, DataAccessError):
    """A value (``email``, ``amount``, ``metadata``...) breaks a rule; nothing was written."""


class IdempotencyKeyReusedError(ValidationError):
    """An idempotency key was sent again with other arguments or for another operation; the
    first call's result stands and nothing was written."""


class TokenReusedError(DataAccessError):
    """A refresh token was presented again after rotation; its family has been revoked."""


class InvalidTransitionError(DataAccessError):
    """A payment status change the state machine does not allow."""


class ConflictError(DataAccessError):
    """Another transaction changed the row first; re-read and decide again."""


class TransientConflictError(ConflictError):
    """A serialization failure or deadlock: the whole transaction may be run again."""


class TransactionAbortedError(DataAccessError):
    """A call inside the transaction failed on the server or was cut off (cancelled, timed
    out), so the transaction could only roll back: nothing in it was committed. The message
    names the first failure; running the transaction again helps only where that failure
    would not recur (a cut-off call; not a duplicate email)."""


class RetryExhaustedError(DataAccessError):
    """A transaction kept failing on serialization conflicts or deadlocks."""


class PoolTimeoutError(DataAccessError):
    """No pooled connection became free within ``pool_timeout``."""


class QueryTimeoutError(DataAccessError):
    """A statement ran past ``statement_timeout`` or waited past ``lock_timeout``."""


class InDoubtError(OutcomeUnknownError, DataAccessError):
    """A transaction spanning service databases lost its coordinator at the commit point; its
    outcome (all or nothing) is settled by ``shared-db db recover``."""

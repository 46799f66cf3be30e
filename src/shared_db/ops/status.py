"""``migrate status``: applied, pending and drift for every target (models vs database, or with
pending migrations the database vs its applied migrations, ``ops.applied_drift``).

Light on purpose: it reads the history from the files and the version tables on a plain
psycopg connection, and loads Alembic, SQLAlchemy and the models only when the drift has to be
compared in full, which a remembered clean answer for the same schema and code spares
(``ops.fingerprint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from shared_db.connect import connect_direct
from shared_db.ops import fingerprint
from shared_db.ops.history import Step, all_steps, applied_steps
from shared_db.ops.targets import Target

if TYPE_CHECKING:
    from sqlalchemy import MetaData


@dataclass
class TargetStatus:
    target: str
    database: str
    applied: list[Step] = field(default_factory=list)
    pending: list[Step] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    drift_checked: bool = False

    @property
    def up_to_date(self) -> bool:
        return not (self.pending or self.unknown or self.drift)


def status(target: Target, migrations_dir: Path, metadata: MetaData | None = None, *,
           cache: Path | None = None) -> TargetStatus:
    """Where ``target`` stands, and its drift: from the models once nothing is pending, else
    from its applied migrations replayed in a shadow database (``ops.applied_drift``).

    ``cache``: where clean drift answers are remembered (none: always compare in full);
    unused with a ``metadata`` of the caller's, which the package's digest does not cover.
    """
    safe = target.connection.safe_url()
    with connect_direct(target.connection, autocommit=True) as conn:
        applied, unknown = applied_steps(conn, migrations_dir, target.chains)
        done = set(applied)
        pending = [s for s in all_steps(migrations_dir, target.chains) if s not in done]
        result = TargetStatus(target.name, safe, applied, pending, unknown)
        if not pending and not unknown:
            result.drift = _drift(conn, target, metadata, None if metadata else cache)
            result.drift_checked = True
    if pending and not unknown:
        # Loaded only here: the replay needs Alembic and a scratch database.
        from shared_db.ops import applied_drift

        if applied_drift.replayable(migrations_dir, target, applied):
            try:
                result.drift = applied_drift.applied_drift(target, migrations_dir, applied)
                result.drift_checked = True
            except applied_drift.NO_SHADOW:
                pass  # a role that may not create databases: drift stays unchecked
    return result


def _drift(conn: psycopg.Connection[Any], target: Target, metadata: MetaData | None,
           cache: Path | None) -> list[str]:
    name = fingerprint.key(fingerprint.catalog_digest(conn), target.chains) if cache else ""
    if cache and fingerprint.known_clean(cache, name):
        return []
    from shared_db.engine import connect_to  # the full comparison: SQLAlchemy and the models
    from shared_db.ops.drift import drift

    with connect_to(target.connection) as full:
        lines = drift(full, target.chains, metadata)
    # Kept only if nothing changed the schema while it was compared.
    if cache and not lines and fingerprint.key(fingerprint.catalog_digest(conn),
                                               target.chains) == name:
        fingerprint.remember_clean(cache, name)
    return lines

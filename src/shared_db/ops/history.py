"""Migration history: the chains' revisions in global order, and what a database has applied.

Read without Alembic: the revision ids come from each file's ``revision`` and ``down_revision``
assignments (string literals, as every generated migration has them; ``ops.revision_files``
reads and checks them) and the applied revisions
from the version tables in one query, so ``migrate status`` starts without loading Alembic or
SQLAlchemy. Alembic reads the same files the same way when it runs them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from shared_db.errors import MigrationError
from shared_db.ops.revision_files import Step as Step
from shared_db.ops.revision_files import read_chain
from shared_db.ops.versions import version_table
from shared_db.validation import shown

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection


def alembic_config(migrations_dir: Path, chain: str, connection: Connection | None = None,
                   **attributes: Any) -> Config:
    """An Alembic ``Config`` for ``chain``, sharing ``connection`` with env.py."""
    from alembic.config import Config  # only for commands that run migrations: start-up

    cfg = Config(output_buffer=io.StringIO(), stdout=io.StringIO())
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("version_locations", str(migrations_dir / "versions" / chain))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("chain", chain)
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.set_main_option("truncate_slug_length", "60")
    cfg.attributes["connection"] = connection
    cfg.attributes.update(attributes)
    return cfg


def chain_steps(migrations_dir: Path, chain: str) -> list[Step]:
    """``chain``'s migrations, oldest first.

    Raises:
        MigrationError: the chain has several heads (a migration conflict), a file names a
            revision no file defines, two files share a revision id, or a revision id is not a
            UTC timestamp greater than its parent's (``revision_files.ID_RULE``).
    """
    by_id = read_chain(migrations_dir, chain)
    parents = {s.down_revision for s in by_id.values()}
    heads = sorted(set(by_id) - parents)
    if len(heads) > 1:
        raise MigrationError(
            f"migration conflict in chain {chain!r}: several newest migrations {heads}; "
            "give one of them the other as down_revision")
    # Every parent is known and older than its child (read_chain): with one head, the walk
    # down from it meets every migration once.
    steps: list[Step] = []
    current = heads[0] if heads else None
    while current is not None:
        steps.append(by_id[current])
        current = by_id[current].down_revision
    return list(reversed(steps))


def all_steps(migrations_dir: Path, chains: tuple[str, ...]) -> list[Step]:
    """Every migration of ``chains`` in the global order deploy applies them."""
    steps = [step for chain in chains for step in chain_steps(migrations_dir, chain)]
    return sorted(steps, key=lambda s: s.order)


def _driver(connection: Connection | psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    # Commands that hold a SQLAlchemy connection read the versions on the psycopg one inside.
    if isinstance(connection, psycopg.Connection):
        return connection
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def current_revisions(connection: Connection | psycopg.Connection[Any],
                      chains: tuple[str, ...]) -> dict[str, str | None]:
    """The revision each chain is at in this database (None: nothing applied), read in two
    statements whatever the number of chains.

    Raises:
        MigrationError: a version table holds several revisions (not written by shared-db).
    """
    conn = _driver(connection)
    tables = [version_table(chain) for chain in chains]
    present = {name for name, found in conn.execute(
        "SELECT t, to_regclass(quote_ident(t)) IS NOT NULL FROM unnest(%s::text[]) AS t",
        [tables]) if found}
    current: dict[str, str | None] = dict.fromkeys(chains)
    reads = [sql.SQL("SELECT {}::text, version_num FROM {}").format(
        sql.Literal(chain), sql.Identifier(version_table(chain)))
        for chain in chains if version_table(chain) in present]
    if not reads:
        return current
    for chain, revision in conn.execute(sql.SQL(" UNION ALL ").join(reads)):
        if current[chain] is not None:
            raise MigrationError(f"{version_table(chain)} holds several revisions; a chain "
                                 "has one current migration")
        current[chain] = revision
    return current


def current_revision(connection: Connection | psycopg.Connection[Any],
                     chain: str) -> str | None:
    """The revision ``chain`` is at in this database (None: nothing applied)."""
    return current_revisions(connection, (chain,))[chain]


def applied_steps(connection: Connection | psycopg.Connection[Any], migrations_dir: Path,
                  chains: tuple[str, ...]) -> tuple[list[Step], list[str]]:
    """Applied migrations in global order, and revisions the database has but no file names."""
    applied: list[Step] = []
    unknown: list[str] = []
    for chain, current in current_revisions(connection, chains).items():
        if current is None:
            continue
        steps = chain_steps(migrations_dir, chain)
        ids = [s.revision for s in steps]
        if current not in ids:
            unknown.append(f"{chain}:{current}")
            continue
        applied.extend(steps[: ids.index(current) + 1])
    return sorted(applied, key=lambda s: s.order), unknown


def find_step(steps: list[Step], ref: str) -> Step:
    """The step ``ref`` names: ``chain:rev``, ``chain:rev_name``, ``rev`` or ``rev_name``.

    Raises:
        MigrationError: no step or several steps match.
    """
    chain, _, rest = ref.rpartition(":")
    matches = [
        s for s in steps
        if (not chain or s.chain == chain) and rest in (s.revision, f"{s.revision}_{s.name}")
    ]
    if not matches:
        raise MigrationError(f"unknown migration {shown(ref)}; known: "
                             + ", ".join(s.label for s in steps))
    if len(matches) > 1:
        raise MigrationError(f"migration {shown(ref)} is ambiguous: "
                             + ", ".join(s.label for s in matches) + "; prefix it with its chain")
    return matches[0]

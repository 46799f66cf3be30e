"""Migration history: the chains' revisions in global order, and what a database has applied."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from shared_db.errors import MigrationError
from shared_db.ops.chains import CHAINS, version_table


@dataclass(frozen=True)
class Step:
    """One migration of one chain."""

    chain: str
    revision: str
    name: str
    down_revision: str | None

    @property
    def label(self) -> str:
        """``<chain>:<rev>_<name>``, as commands print and accept it."""
        return f"{self.chain}:{self.revision}_{self.name}"

    @property
    def order(self) -> tuple[str, int]:
        return (self.revision, CHAINS.index(self.chain))


def alembic_config(migrations_dir: Path, chain: str, connection: Connection | None = None,
                   **attributes: Any) -> Config:
    """An Alembic ``Config`` for ``chain``, sharing ``connection`` with env.py."""
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
        MigrationError: the chain has several heads or several bases (a migration conflict).
    """
    script = ScriptDirectory.from_config(alembic_config(migrations_dir, chain))
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"migration conflict in chain {chain!r}: several newest migrations {sorted(heads)}; "
            "give one of them the other as down_revision")
    steps = [
        Step(chain, s.revision, Path(s.path).stem.partition("_")[2] or s.revision,
             s.down_revision if isinstance(s.down_revision, str) else None)
        for s in script.walk_revisions()
    ]
    return list(reversed(steps))


def all_steps(migrations_dir: Path, chains: tuple[str, ...]) -> list[Step]:
    """Every migration of ``chains`` in the global order deploy applies them."""
    steps = [step for chain in chains for step in chain_steps(migrations_dir, chain)]
    return sorted(steps, key=lambda s: s.order)


def current_revision(connection: Connection, chain: str) -> str | None:
    """The revision ``chain`` is at in this database (None: nothing applied)."""
    context = MigrationContext.configure(connection, opts={"version_table": version_table(chain)})
    return context.get_current_revision()


def applied_steps(connection: Connection, migrations_dir: Path,
                  chains: tuple[str, ...]) -> tuple[list[Step], list[str]]:
    """Applied migrations in global order, and revisions the database has but no file names."""
    applied: list[Step] = []
    unknown: list[str] = []
    for chain in chains:
        steps = chain_steps(migrations_dir, chain)
        current = current_revision(connection, chain)
        if current is None:
            continue
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
        raise MigrationError(f"unknown migration {ref!r}; known: "
                             + ", ".join(s.label for s in steps))
    if len(matches) > 1:
        raise MigrationError(f"migration {ref!r} is ambiguous: "
                             + ", ".join(s.label for s in matches) + "; prefix it with its chain")
    return matches[0]

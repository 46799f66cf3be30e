"""One chain's migration files, read without importing them: each file's ``revision``,
``down_revision`` and ``replaces`` assignments (string literals, as every generated migration has
them), checked against the rules that make the global order hold.

Revision ids are UTC timestamps, ``YYYYMMDDHHMMSS``, and a migration's id is greater than its
parent's: the ids alone then order every chain's migrations, as ``deploy`` runs them, and a
migration inserted before one a database already has is refused here instead of being taken
for applied.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from shared_db.errors import MigrationError
from shared_db.ops.versions import CHAINS

# Alembic's own rule for which files in a versions folder are migrations.
_MIGRATION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
REVISION_ID = re.compile(r"[0-9]{14}")
ID_RULE = ("revision ids are UTC timestamps (YYYYMMDDHHMMSS, 14 digits) and set the order "
           "migrations run in: a migration's id is greater than its down_revision's")


@dataclass(frozen=True)
class Step:
    """One migration of one chain."""

    chain: str
    revision: str
    name: str
    down_revision: str | None
    replaces: tuple[str, ...] = field(default=(), compare=False)
    """For a squash (``ops.squash``): the revisions it stands for, oldest first."""

    @property
    def label(self) -> str:
        """``<chain>:<rev>_<name>``, as commands print and accept it."""
        return f"{self.chain}:{self.revision}_{self.name}"

    @property
    def order(self) -> tuple[str, int]:
        # A squash runs where its first replaced migration ran: other chains' migrations in
        # between (``links``) need what it makes.
        return (self.replaces[0] if self.replaces else self.revision, CHAINS.index(self.chain))


def _literal(tree: ast.Module, name: str, path: Path) -> object:
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return ast.literal_eval(value)
            except (ValueError, TypeError, RecursionError, MemoryError):  # {[]}, deep nesting
                break
    raise MigrationError(f"migration {path.name}: {name} must be assigned a literal "
                         "(a string, or None for the first migration)")


def _read(path: Path, chain: str) -> Step:
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except OSError as exc:  # a folder named *.py, a file the user may not read
        raise MigrationError(f"migration {path.name} cannot be read: "
                             f"{exc.strerror or exc}") from None
    except SyntaxError as exc:
        raise MigrationError(f"migration {path.name} is not valid Python: {exc.msg} "
                             f"(line {exc.lineno})") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # a NUL byte; nesting too deep
        raise MigrationError(f"migration {path.name} cannot be parsed: "
                             f"{type(exc).__name__}") from None
    revision, down = _literal(tree, "revision", path), _literal(tree, "down_revision", path)
    if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
        raise MigrationError(f"migration {path.name}: revision must be a string and "
                             "down_revision a string or None (chains do not branch or merge)")
    replaces = _literal(tree, "replaces", path) if _assigns(tree, "replaces") else ()
    if not (isinstance(replaces, tuple) and all(isinstance(r, str) for r in replaces)):
        raise MigrationError(f"migration {path.name}: replaces must be a tuple of revision "
                             "strings")
    for name, value in (("revision", revision), ("down_revision", down),
                        *(("replaces", r) for r in replaces)):
        if value is not None and not _timestamp(value):
            raise MigrationError(f"migration {path.name}: {name} {value!r} is not a revision "
                                 f"id; {ID_RULE}")
    return Step(chain, revision, path.stem.partition("_")[2] or revision, down, replaces)


def _timestamp(revision: str) -> bool:
    if not REVISION_ID.fullmatch(revision):
        return False
    try:
        datetime.strptime(revision, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


def _assigns(tree: ast.Module, name: str) -> bool:
    return any(isinstance(t, ast.Name) and t.id == name
               for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))


def _by_id(chain: str, files: list[Path]) -> tuple[dict[str, Step], dict[str, str]]:
    by_id: dict[str, Step] = {}
    file_of: dict[str, str] = {}
    for path in files:
        step = _read(path, chain)
        if step.revision in by_id:
            raise MigrationError(f"migrations {file_of[step.revision]} and {path.name} of chain "
                                 f"{chain!r} have the same revision id {step.revision!r}")
        by_id[step.revision], file_of[step.revision] = step, path.name
    return by_id, file_of


def read_chain(migrations_dir: Path, chain: str) -> dict[str, Step]:
    """``chain``'s migrations by revision id, their ids and parents checked.

    Raises:
        MigrationError: a file is not valid Python or lacks literal ids, two files share an id,
            an id is not a timestamp, a down_revision names no migration of the chain, or a
            revision is not greater than its down_revision.
    """
    folder = migrations_dir / "versions" / chain
    files = sorted(p for p in folder.glob("*.py") if _MIGRATION_FILE.fullmatch(p.name))
    by_id, file_of = _by_id(chain, files)
    for revision, step in by_id.items():
        down = step.down_revision
        if down is not None and down not in by_id:
            raise MigrationError(
                f"migration {file_of[revision]}: its down_revision {down!r} is unknown: no "
                f"migration of chain {chain!r} has that revision id; point it at the chain's "
                "newest migration, or restore the missing file")
        if down is not None and revision <= down:
            raise MigrationError(
                f"migration {file_of[revision]}: revision {revision!r} is not greater than its "
                f"down_revision {down!r}; {ID_RULE}")
    return by_id

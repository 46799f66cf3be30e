"""``migrate squash --chain C --to REV``: one migration for new databases in place of the history
up to REV, while databases at or past REV go on from where they are.

The squash takes REV's own revision id, with no ``down_revision`` and a literal
``replaces = (...)`` of the ids it stands for (``ops.history`` reads it like the other
literals). A database at or past REV has REV in its version table, which is now the squash's id:
its history continues unchanged. A new database runs the squash, which runs the replaced
migrations' own code, moved unchanged into ``versions/<chain>/replaced/`` (``ops.squashed``); its
downgrade undoes them in reverse. A database part-way through the replaced range would find its
revision gone (``migrate status`` reports it as unknown): deploy REV everywhere before squashing.
The replaced files' lint acknowledgements are carried over.

Only service chains squash: ``links`` joins several services' tables and stays as it is.
Written so that nothing is half done: the new file is written under a name Alembic ignores, the
old files are moved, then the new file is renamed into place; any failure moves them back.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from shared_db.errors import MigrationError, ValidationError
from shared_db.migrations_folder import check_writable
from shared_db.ops.history import Step, chain_steps, find_step
from shared_db.ops.versions import CHAINS, LINKS


@dataclass(frozen=True)
class Squashed:
    chain: str
    step: Step
    path: Path
    replaces: tuple[str, ...]


def _acknowledged(path: Path) -> dict[str, str]:
    for node in ast.parse(path.read_bytes()).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and any(
                isinstance(t, ast.Name) and t.id == "lint_acknowledged"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            value = ast.literal_eval(node.value) if node.value is not None else {}
            return dict(value)
    return {}


def _text(chain: str, step: Step, replaces: tuple[str, ...], acknowledged: dict[str, str]) -> str:
    return (f'"""Squash of chain {chain} up to {step.revision}_{step.name}: the migrations in\n'
            'replaced/, run by their own code (shared_db.ops.squash)."""\n\n'
            "from shared_db.ops.squashed import replay\n\n"
            f"revision = {step.revision!r}\ndown_revision = None\n"
            f"replaces = {replaces!r}\nbranch_labels = None\ndepends_on = None\n"
            + (f"lint_acknowledged = {acknowledged!r}\n" if acknowledged else "")
            + "\n\ndef upgrade() -> None:\n    replay(__file__, replaces, \"upgrade\")\n\n\n"
            "def downgrade() -> None:\n    replay(__file__, replaces, \"downgrade\")\n")


def squash(migrations_dir: Path, chain: str, to: str) -> Squashed:
    """Replace ``chain``'s migrations up to ``to`` by one squash migration.

    Raises:
        ValidationError: an unknown chain or ``links``.
        MigrationError: an unknown revision, or nothing to squash.
    """
    if chain not in CHAINS or chain == LINKS:
        raise ValidationError("--chain", "choose a service chain: " + ", ".join(
            c for c in CHAINS if c != LINKS) + f", got {chain!r}")
    check_writable(migrations_dir, [chain])
    steps = chain_steps(migrations_dir, chain)
    try:
        step = find_step(steps, to if ":" in to else f"{chain}:{to}")
    except MigrationError as exc:
        raise MigrationError(f"--to: {exc}") from None
    upto = steps[:steps.index(step) + 1]
    if any(s.replaces for s in upto):
        raise MigrationError(f"--to {to!r}: chain {chain} up to there includes a squash; "
                             "squash again only past it")
    if len(upto) < 2:
        raise MigrationError(f"--to {to!r}: {step.label} is the first migration of chain "
                             f"{chain}; there is nothing to squash")
    folder = migrations_dir / "versions" / chain
    files = {s.revision: next(folder.glob(f"{s.revision}_*.py")) for s in upto}
    acknowledged: dict[str, str] = {}
    for path in files.values():
        acknowledged |= _acknowledged(path)
    replaces = tuple(s.revision for s in upto)
    name = f"squash_{step.name}"[:60]
    final = folder / f"{step.revision}_{name}.py"
    pending = folder / f".{final.name}.partial"  # not a *.py: Alembic and history skip it
    pending.write_text(_text(chain, step, replaces, acknowledged))
    (folder / "replaced").mkdir(exist_ok=True)
    moved: list[tuple[Path, Path]] = []
    try:
        for path in files.values():
            os.replace(path, folder / "replaced" / path.name)
            moved.append((path, folder / "replaced" / path.name))
        os.replace(pending, final)
    except BaseException:
        for old, new in reversed(moved):
            os.replace(new, old)
        pending.unlink(missing_ok=True)
        raise
    squashed = next(s for s in chain_steps(migrations_dir, chain) if s.revision == step.revision)
    return Squashed(chain, squashed, final, replaces)

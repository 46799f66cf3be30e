"""What a squashed migration runs: the migrations it replaces, kept beside it in ``replaced/``.

A squash (``ops.squash``) keeps each replaced file as it was, moved out of the chain's folder
(Alembic does not look in sub-folders), so their code, with its imports and helpers, runs
unchanged: the squash's ``upgrade`` calls theirs in order, its ``downgrade`` theirs in reverse.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from shared_db.errors import MigrationError


def _load(folder: Path, revision: str) -> ModuleType:
    found = sorted(folder.glob(f"{revision}_*.py"))
    if len(found) != 1:
        raise MigrationError(f"squashed migration: replaced/{revision}_*.py is missing")
    spec = importlib.util.spec_from_file_location(f"_replaced_{found[0].stem}", found[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay(squash_file: str, replaces: tuple[str, ...], direction: str) -> None:
    """Run ``direction`` (``upgrade`` or ``downgrade``) of every replaced migration."""
    folder = Path(squash_file).parent / "replaced"
    order = replaces if direction == "upgrade" else tuple(reversed(replaces))
    for revision in order:
        getattr(_load(folder, revision), direction)()

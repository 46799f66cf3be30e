"""``SHARED_DB_MIGRATIONS_DIR``: what makes a folder one the migration commands may run from.

Apart from ``config`` (which reads the environment) because the check reads the folder: its
``env.py`` compared as code with the package's, its chain folders against the chain names.
"""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

from shared_db.errors import ConfigError
from shared_db.services import SERVICES

PACKAGE_MIGRATIONS = Path(__file__).parent / "migrations"


class MigrationsDir:
    """``Settings.migrations_dir``: the folder is checked each time it is read, not when the
    settings are loaded, so a service (``Database(load_settings())``) or a command that runs no
    migration is not refused for a folder only the migration commands need; every command that
    reads it is.

    A dataclass field whose default is a descriptor: ``__init__`` stores through ``__set__``, the
    folder as given staying in the instance's ``__dict__`` (``repr`` shows it unchecked).
    ``dataclasses.replace`` and ``==`` read it, so they too refuse settings with a bad folder.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}"

    def __get__(self, obj: object, owner: type | None = None) -> Path:
        if obj is None:
            return PACKAGE_MIGRATIONS  # the field's default
        return migrations_folder(obj.__dict__[self.key])

    def __set__(self, obj: object, value: Path | str) -> None:
        obj.__dict__[self.key] = Path(value)


def migrations_folder(path: Path) -> Path:
    """``path`` if it is a migrations folder: an existing directory holding the package's
    ``env.py`` (its code: another would run in every migration command) and ``versions/``, whose
    folders are all chains (a misspelt one would be passed over without a word).

    Raises:
        ConfigError: ``SHARED_DB_MIGRATIONS_DIR`` names no directory, or one without the
            package's ``env.py``, without ``versions/``, or with a folder there that is no chain.
    """
    copy = "a copy of the package's shared_db/migrations"
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise ConfigError("SHARED_DB_MIGRATIONS_DIR", f"must be an existing directory ({copy}), "
                          f"got {str(path)!r}, which {what}")
    folder = (f"must be a migrations folder ({copy}, with its env.py and versions/), got "
              f"{str(path)!r}")
    env = path / "env.py"
    if not env.is_file():
        raise ConfigError("SHARED_DB_MIGRATIONS_DIR", f"{folder}, which has no env.py")
    if _code(env) != _package_env():
        raise ConfigError("SHARED_DB_MIGRATIONS_DIR", f"{folder}, whose env.py is not the "
                          "package's (copy it from shared_db/migrations/env.py)")
    versions = path / "versions"
    if not versions.is_dir():
        raise ConfigError("SHARED_DB_MIGRATIONS_DIR", f"{folder}, which has no versions/")
    chains = (*SERVICES, "links")  # ops.versions.CHAINS, which this layer may not import
    try:
        unknown = sorted(p.name for p in versions.iterdir() if p.is_dir()
                         and p.name not in chains and not p.name.startswith((".", "__")))
    except OSError as exc:
        raise ConfigError("SHARED_DB_MIGRATIONS_DIR", f"{folder}, whose versions/ cannot be "
                          f"read: {exc.strerror or exc}") from None
    if unknown:
        raise ConfigError("SHARED_DB_MIGRATIONS_DIR", f"{folder}, whose versions/ holds "
                          f"{', '.join(unknown)}, which is no chain; the chains are "
                          f"{', '.join(chains)}")
    return path


@functools.cache
def _package_env() -> str | None:
    return _code(PACKAGE_MIGRATIONS / "env.py")


def _code(env: Path) -> str | None:
    """What ``env`` runs: its syntax tree without docstring, so comments and layout may differ."""
    try:
        tree = ast.parse(env.read_bytes())
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def check_writable(migrations_dir: Path, chains: tuple[str, ...] | list[str]) -> None:
    """Refuse, before any work, a folder where the chains' new files could not be written
    (a read-only volume, another owner): found only when writing, that was a traceback after
    a scratch database had been built for nothing."""
    for folder in [migrations_dir, *(migrations_dir / "versions" / c for c in chains)]:
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError("SHARED_DB_MIGRATIONS_DIR", f"must be writable to add migrations: "
                              f"{folder} is not")

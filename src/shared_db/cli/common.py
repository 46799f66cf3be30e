"""What the command modules share: consoles, settings from the environment, targets, and
``lazy``, which lets a command module name the operations it calls without loading them: the
command line starts (and ``--help`` answers) without SQLAlchemy, psycopg or the pools."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from shared_db.errors import ConfirmationRequired

if TYPE_CHECKING:
    from shared_db.config import Settings
    from shared_db.ops.targets import Target

def _width(stream: object) -> int | None:
    # Into a pipe or a file, rich would lay tables out for 80 columns and cut query names and
    # URLs short; there, wide enough for whole lines (COLUMNS still decides when it is set).
    isatty = getattr(stream, "isatty", None)
    if "COLUMNS" in os.environ or (isatty is not None and isatty()):
        return None
    return PIPED_WIDTH


PIPED_WIDTH = 240
console = Console(highlight=False, width=_width(sys.stdout))
console_err = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def lazy(name: str) -> ModuleType:
    """Module ``name``, executed on first attribute access."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def settings() -> Settings:
    from shared_db.config import load_settings

    return load_settings()


def targets(current: Settings, *, offline: bool = False) -> list[Target]:
    """The configured databases, telling stderr when the embedded server is used (and, when
    ``offline``, not starting it)."""
    from shared_db.ops.targets import resolve_targets

    return resolve_targets(current, notice=lambda text: console_err.print(
        text, style="dim", soft_wrap=True), offline=offline)


def confirm(question: str, force: bool) -> None:
    """Go on only with ``--force`` or a yes typed at a terminal; never prompt a pipe."""
    if force:
        return
    if not sys.stdin.isatty():
        raise ConfirmationRequired(f"{question} Refusing without a terminal; pass --force.")
    if not typer.confirm(question, default=False):
        raise ConfirmationRequired("not confirmed; nothing was changed")


def titled(text: str) -> Text:
    """A table's title that is never wrapped at the table's width (a URL in it stays whole,
    however narrow the table)."""
    return Text(text, no_wrap=True, overflow="ignore")

"""What the command modules share: consoles, settings from the environment, targets."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from shared_db.config import Settings, load_settings
from shared_db.errors import ConfirmationRequired
from shared_db.ops.targets import Target, resolve_targets

console = Console(highlight=False)
console_err = Console(stderr=True, highlight=False)


def settings() -> Settings:
    return load_settings()


def targets(current: Settings) -> list[Target]:
    """The configured databases, telling stderr when the embedded server is used."""
    return resolve_targets(current, notice=lambda text: console_err.print(
        text, style="dim", soft_wrap=True))


def confirm(question: str, force: bool) -> None:
    """Go on only with ``--force`` or a yes typed at a terminal; never prompt a pipe."""
    if force:
        return
    if not sys.stdin.isatty():
        raise ConfirmationRequired(f"{question} Refusing without a terminal; pass --force.")
    if not typer.confirm(question, default=False):
        raise ConfirmationRequired("not confirmed; nothing was changed")

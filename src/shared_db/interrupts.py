"""SIGTERM ends a command as Ctrl-C does, so what it had started is undone on the way out.

A deploy pipeline cancelled or a container stopped sends SIGTERM, whose default ends the process
at once: a backup's ``.partial`` file, its claim and a running pg_dump stayed behind. The command
line sets ``on_sigterm``, which raises ``Terminated`` (a ``KeyboardInterrupt``) where the code
is, as Ctrl-C's handler does (raised inside a finalizer, where Python drops it, it is given
again: ``unraisable``). Inside an event loop an exception raised at an arbitrary point can
leave a task that never finishes (a pool worker's cancelled wait), and the loop's shutdown then
hangs, so ``run`` (``asyncio.run`` for the commands) leaves SIGTERM at its default while the
loop runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
received: list[int] = []
"""The SIGTERMs received since ``reset``."""


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def reset() -> None:
    received.clear()


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler outside event loops."""
    received.append(signum)
    # The pools' complaints about the connections this cuts off ("discarding closed
    # connection") would be lines beyond the one that says what happened.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    raise Terminated


def unraisable(found: Any) -> None:
    """``sys.unraisablehook`` while ``on_sigterm`` is set: a ``Terminated`` raised inside a
    finalizer or a weakref callback (a collection ran when the signal came) is printed and
    dropped there, and the command would go on; the signal is given again instead, to land in
    the code that runs next."""
    if isinstance(found.exc_value, Terminated):
        signal.raise_signal(signal.SIGTERM)
        return
    sys.__unraisablehook__(found)


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` with SIGTERM at its default for the loop's whole life: it ends the
    process at once, as before. An exception raised inside the loop's own code could leave a
    task that never finishes and hang the loop's shutdown, and cancelling the main task from a
    handler still hung one run in a few dozen; what runs in the loop is a transaction at a time,
    which the server rolls back with the lost connection."""
    import asyncio  # here: the command line imports this module at start, most runs no loop

    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        return asyncio.run(main)
    finally:
        signal.signal(signal.SIGTERM, previous)

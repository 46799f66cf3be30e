"""SIGTERM ends a command as Ctrl-C does, so what it had started is undone on the way out.

A deploy pipeline cancelled or a container stopped sends SIGTERM, whose default ends the process
at once: a backup's ``.partial`` file, its claim and a running pg_dump stayed behind. The command
line sets ``on_sigterm``, which raises ``Terminated`` (a ``KeyboardInterrupt``) where the code
is, as Ctrl-C's handler does. Inside an event loop an exception raised at an arbitrary point can
leave a task that never finishes (a pool worker's cancelled wait), and the loop's shutdown then
hangs, so ``run`` (``asyncio.run`` for the commands) takes SIGTERM on the loop instead and
cancels the main task, as ``asyncio.run`` does for Ctrl-C; the coroutine's cleanup runs and
``Terminated`` is raised once the loop is closed.
"""

from __future__ import annotations

import logging
import signal
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


def _note() -> None:
    received.append(signal.SIGTERM)
    # The pools' complaints about the connections this cuts off ("discarding closed
    # connection") would be lines beyond the one that says what happened.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler outside event loops."""
    _note()
    raise Terminated


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``; a SIGTERM meanwhile cancels ``main`` and raises ``Terminated``
    once the loop is closed."""
    import asyncio  # here: the command line imports this module at start, most runs no loop

    try:
        return asyncio.run(_guarded(main))
    except asyncio.CancelledError:
        if signal.SIGTERM in received:
            raise Terminated from None
        raise


async def _guarded(main: Coroutine[Any, Any, T]) -> T:
    import asyncio

    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    if task is None or threading.current_thread() is not threading.main_thread():
        return await main

    def cancel() -> None:
        _note()
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, cancel)
    try:
        return await main
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)

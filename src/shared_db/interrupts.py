"""SIGTERM ends a command as Ctrl-C does, so what it had started is undone on the way out.

A deploy pipeline cancelled or a container stopped sends SIGTERM, whose default ends the process
at once: a backup's ``.partial`` file, its claim and a running pg_dump stayed behind. The command
line sets ``on_sigterm``, which raises ``Terminated`` (a ``KeyboardInterrupt``) where the code
is, as Ctrl-C's handler does (raised inside a finalizer, where Python drops it, it is given
again: ``unraisable``). Inside an event loop an exception raised at an arbitrary point can
leave a task that never finishes (a pool worker's cancelled wait), and the loop's shutdown then
hangs, so ``run`` (``asyncio.run`` for the commands) sets a handler of its own for the loop's
whole life that only cancels the main task, as ``asyncio.run`` does for Ctrl-C; the coroutine's
cleanup runs and ``Terminated`` is raised once the loop is closed.
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


def _note() -> None:
    received.append(signal.SIGTERM)
    # The pools' complaints about the connections this cuts off ("discarding closed
    # connection") would be lines beyond the one that says what happened.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler outside event loops."""
    _note()
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
    """``asyncio.run(main)``; a SIGTERM meanwhile cancels ``main`` (one that comes before it
    starts or after it ends waits for the loop to close) and raises ``Terminated`` once the
    loop is closed. Nothing is raised inside the loop's own code, whose shutdown would then wait
    forever for tasks an exception cut off."""
    import asyncio  # here: the command line imports this module at start, most runs no loop

    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)
    state: dict[str, Any] = {}

    def deferred(signum: int, frame: FrameType | None) -> None:
        _note()
        task = state.get("task")
        if task is not None and not task.done():  # as asyncio's runner does for Ctrl-C
            task.cancel()
            state["loop"].call_soon_threadsafe(lambda: None)  # wake a waiting select()

    async def guarded() -> T:
        state["task"], state["loop"] = asyncio.current_task(), asyncio.get_running_loop()
        if signal.SIGTERM in received:  # it came while the loop started
            main.close()
            raise asyncio.CancelledError
        try:
            return await main
        finally:
            state.pop("task")

    previous = signal.signal(signal.SIGTERM, deferred)
    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if signal.SIGTERM in received:
            raise Terminated from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if signal.SIGTERM in received and previous is on_sigterm:
            raise Terminated

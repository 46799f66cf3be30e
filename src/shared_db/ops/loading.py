"""Running the code of a migrations folder (env.py and the migration files Alembic imports),
so that whatever it raises ends as one ``MigrationError``, never as a silent exit.

A migration file is ordinary Python: it may raise anything when Alembic imports it, even
``SystemExit`` (which the command line would take for its own exit code) or
``KeyboardInterrupt``. Those are reported like any other failure, naming the file. A real Ctrl-C
is told apart from a ``KeyboardInterrupt`` the code raises by noting each SIGINT that arrives
while the code runs; it still stops the command.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from shared_db.errors import MigrationError, SharedDbError

Failed = Callable[[BaseException], SharedDbError]


def describe(exc: BaseException) -> str:
    """``Type: message``, or the type alone when the message is empty (``SystemExit()``)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _noting_interrupts() -> Iterator[Callable[[], bool]]:
    """Whether a SIGINT arrived during the block; it is handled as before, once noted."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        # No handler can be put in place here: every KeyboardInterrupt is taken as real.
        yield lambda: True
        return
    seen = False

    def noting(signum: int, frame: FrameType | None) -> Any:
        nonlocal seen
        seen = True
        return previous(signum, frame)

    signal.signal(signal.SIGINT, noting)
    try:
        yield lambda: seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _inside(filename: str, root: Path) -> Path | None:
    if filename.startswith("<"):
        return None
    path = Path(filename).resolve()
    return path if path.is_relative_to(root) else None


def loaded_file(exc: BaseException, migrations_dir: Path) -> Path | None:
    """The file of ``migrations_dir`` that raised ``exc`` while being imported, if one did.

    A migration file is blamed when its module-level code is on the traceback; env.py only when
    the exception was raised by its own lines or one of its imports, not by the Alembic run it
    starts (which fails for reasons of its own, named in the exception).
    """
    root = migrations_dir.resolve()
    env = root / "env.py"
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    blamed: Path | None = None
    for index, code in enumerate(frames):
        path = _inside(code.co_filename, root)
        if path is None or code.co_name != "<module>":
            continue
        last = index + 1 == len(frames)
        if path != env or last or frames[index + 1].co_filename.startswith("<frozen"):
            blamed = path
    return blamed


@contextmanager
def migration_code(migrations_dir: Path, failed: Failed) -> Iterator[None]:
    """Run the block, which runs code of ``migrations_dir`` through Alembic.

    Raises:
        MigrationError: a file raised while it was imported (naming it), whatever it raised.
        SharedDbError: ``failed(exc)`` for anything else the block raised, ``SystemExit`` and
            a ``KeyboardInterrupt`` that is no real Ctrl-C included.
        KeyboardInterrupt: a real Ctrl-C, unchanged.
    """
    with _noting_interrupts() as interrupted:
        try:
            yield
        except SharedDbError:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and interrupted():
                raise
            path = loaded_file(exc, migrations_dir)
            if path is None:
                raise failed(exc) from exc
            env = path == migrations_dir.resolve() / "env.py"
            fix = ("restore the package's env.py" if env else
                   "fix or remove it: Alembic imports every file of a chain, so none of the "
                   "chain's migrations can run until then")
            raise MigrationError(f"cannot load {path}: it raised {describe(exc)} when imported; "
                                 f"{fix}") from exc

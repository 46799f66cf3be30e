"""``shared-db``: the command line. Commands parse, call one function in ``ops``, and render.

Errors of the ``SharedDbError`` family print as one line on stderr with a non-zero exit code:
2 bad settings or arguments (usage errors too), 3 database unreachable, 4 migration
problem, 5 confirmation missing, 6 backup or restore problem, 7 a migration step's locks
not granted in any try, 8 ``migrate adopt`` rolled back because the converted data or
schema differed, 1 other.

A SIGTERM (a deploy pipeline cancelled, a container stopped) is handled as Ctrl-C is
(``shared_db.interrupts``), so what the command had started is undone on the way out (a
backup's ``.partial`` file and its pg_dump, psql's input to a restore closed before its
``COMMIT``), then exit 143 (130 for Ctrl-C). A process that set a SIGTERM handler of its own
before calling ``main`` keeps it.
"""

from __future__ import annotations

import signal
import sys
import threading

import typer
from rich.markup import escape

try:  # click as typer carries it (since 0.20), or click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException  # type: ignore[assignment]

from shared_db import interrupts
from shared_db.cli import db, migrate
from shared_db.cli.backup import backup, restore
from shared_db.cli.common import console_err
from shared_db.cli.doctor import doctor
from shared_db.cli.metrics import metrics
from shared_db.cli.roles import roles
from shared_db.cli.split import split
from shared_db.cli.stats import stats
from shared_db.cli.studio import studio
from shared_db.cli.up import up
from shared_db.errors import (
    AdoptionMismatchError,
    BackupError,
    ConfirmationRequired,
    DataAccessError,
    DatabaseUnavailableError,
    FieldRuleError,
    LockTimeoutError,
    MigrationError,
    SharedDbError,
)

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="The PostgreSQL data layer of the auth, payments, admin and profile "
                       "services: migrations, seed data, the embedded development server.")
app.add_typer(migrate.app, name="migrate")
app.add_typer(db.app, name="db")
app.command()(up)
app.command()(stats)
app.command()(doctor)
app.command()(backup)
app.command()(restore)
app.command()(split)
app.command()(roles)
app.command()(studio)
app.command()(metrics)

EXIT_CODES: list[tuple[type[SharedDbError], int]] = [
    (FieldRuleError, 2),  # a setting or an argument (ConfigError, ValidationError)
    (DatabaseUnavailableError, 3),
    (LockTimeoutError, 7),
    (AdoptionMismatchError, 8),
    (MigrationError, 4),
    (ConfirmationRequired, 5),
    (BackupError, 6),
]


def exit_code(error: SharedDbError) -> int:
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), 1)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``shared-db`` script; returns the process exit code.

    After a SIGTERM, whatever ends the command (click's exit for the interrupt, or an error it
    caused, such as a module left half imported) is exit 143 and one line."""
    ours = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    interrupts.reset()
    hook = sys.unraisablehook
    if ours:
        signal.signal(signal.SIGTERM, interrupts.on_sigterm)
        sys.unraisablehook = interrupts.unraisable
    try:
        code = _main(argv)
    except BaseException:
        if not interrupts.received:
            raise
        code = 143
    finally:
        if ours:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            sys.unraisablehook = hook
    if interrupts.received:
        console_err.print("Terminated.", highlight=False)
        return 143
    return code


def _main(argv: list[str] | None) -> int:
    try:
        # Not standalone: click raises its usage errors here instead of printing them as a
        # boxed, multi-line panel, so they are one line like every other error.
        code = app(args=argv, prog_name="shared-db", standalone_mode=False)
    except ClickException as error:
        if not error.format_message():  # no arguments: the help it printed says it all
            return error.exit_code
        context = getattr(error, "ctx", None)
        path = (context.command_path if context is not None
                else _command_path(sys.argv[1:] if argv is None else argv))
        where = f" (see '{path} --help')"
        console_err.print(f"[bold red]error:[/] {escape(error.format_message())}"
                          f"{escape(where)}", highlight=False, soft_wrap=True)
        return error.exit_code
    except typer.Abort:
        if not interrupts.received:  # a SIGTERM says so itself, once
            console_err.print("Aborted.", highlight=False)
        return 130
    except SharedDbError as error:
        # escape(): a message quoting a value such as "[/]" must not be read as markup.
        console_err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False,
                          soft_wrap=True)
        return exit_code(error)
    except OSError as error:
        # A file the command had to read or write (a read-only volume, a full disk) that no
        # check before it caught: its name and the reason on one line, still no traceback.
        where = f"{error.filename}: " if error.filename else ""
        console_err.print(f"[bold red]error:[/] {escape(where + (error.strerror or str(error)))}",
                          highlight=False, soft_wrap=True)
        return 1
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except Exception as error:
        found = _driver_error(error)
        if found is None:
            raise
        console_err.print(f"[bold red]error:[/] {escape(str(found))}", highlight=False,
                          soft_wrap=True)
        return exit_code(found)
    return code if isinstance(code, int) else 0


def _command_path(words: list[str]) -> str:
    """The command ``words`` name (``shared-db migrate sql``): for an error click raised with
    no context of its own, a missing option value."""
    command, path = typer.main.get_command(app), ["shared-db"]
    for word in words:
        found = getattr(command, "commands", {}).get(word)
        if found is None:
            break
        command = found
        path.append(word)
    return " ".join(path)


def _driver_error(error: Exception) -> SharedDbError | None:
    """The shared-db error for a database error no command translated (a role refused a
    table the command reads, say), or None for anything else. psycopg is looked for only
    among loaded modules: a command that never connected cannot have raised its errors."""
    if "psycopg" not in sys.modules:
        return None
    import psycopg

    from shared_db.errors_db import translate_error

    cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    if not isinstance(cause, psycopg.Error):
        return None
    found = translate_error(cause)
    if isinstance(cause, psycopg.errors.InsufficientPrivilege):
        found = DataAccessError(f"{found} (the URL's role may not: migrations and the other "
                                "commands that change or read the schema run as its owner; "
                                "the roles `shared-db roles` makes are the services')")
    return found if isinstance(found, SharedDbError) else None


def run() -> None:
    sys.exit(main())

"""``shared-db studio``: browse and edit the data in a local web page.

The studio needs the ``studio`` extra (Starlette, uvicorn, Jinja2, python-multipart); without
it the command says how to install it (exit 2) instead of failing on an import. The arguments
are checked first, so a refused ``--host`` is refused the same way with or without the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Annotated

import typer

from shared_db.cli.common import console, settings, targets
from shared_db.errors import ConfigError

INSTALL = "pip install 'shared-db[studio]'"
# The module each distribution of the studio extra installs; python-multipart's was
# ``multipart`` before 0.0.13, and Starlette takes either.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "starlette": ("starlette",), "uvicorn": ("uvicorn",), "jinja2": ("jinja2",),
    "python-multipart": ("python_multipart", "multipart"),
}


def check_arguments(host: str, read_only: bool, writes: bool) -> None:
    """The checks of ``studio.server.check_host`` and ``read_only`` that need neither the
    extra nor a database, made before either is loaded."""
    from shared_db.studio.security import is_loopback  # standard library only

    if read_only and writes:
        raise ConfigError("--writes", "cannot be combined with --read-only")
    if not is_loopback(host) and not read_only:
        raise ConfigError("--host", f"{host} is not a loopback address; the studio serves "
                          "other machines only with --read-only (its token travels over "
                          "plain HTTP)")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails to import, or __spec__ unset
        return False


def load_server() -> ModuleType:
    """``shared_db.studio.server``, or a ConfigError naming what of the extra is missing."""
    missing = [dist for dist, modules in EXTRA_MODULES.items()
               if not any(_installed(m) for m in modules)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError("shared-db studio", f"needs the studio extra, and "
                          f"{' and '.join(missing)} {verb} not installed; install it with "
                          f"{INSTALL}")
    try:
        return importlib.import_module("shared_db.studio.server")
    except ModuleNotFoundError as exc:  # a dependency of the extra's packages
        package = (exc.name or "").partition(".")[0]
        if package in ("", "shared_db"):
            raise
        raise ConfigError("shared-db studio", f"needs the studio extra, and module {package} "
                          f"is not installed; install it with {INSTALL}") from None


def studio(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 5555,
    host: Annotated[str, typer.Option(help="Address to listen on; a non-loopback one needs "
                                           "--read-only.")] = "127.0.0.1",
    read_only: Annotated[bool, typer.Option("--read-only", help="Browse only; no form "
                                                                "writes.")] = False,
    writes: Annotated[bool, typer.Option("--writes", help="Allow edits even with "
                                                          "SHARED_DB_ENV=production.")] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a "
                                                                  "browser.")] = False,
) -> None:
    """Serve the studio (tables, records, edits through the repositories, migrations, stats,
    doctor) until interrupted; prints `Studio: http://HOST:PORT/?token=...` first."""
    check_arguments(host, read_only, writes)  # before the extra or any database is loaded
    server = load_server()
    server.check_host(host, read_only)  # the studio's own rule, should it ever say more
    current = settings()
    targets(current)  # starts the embedded server when DATABASE_URL is unset, and says so
    server.serve(current, host, port, asked_read_only=read_only, asked_writes=writes,
                 open_browser=not no_browser,
                 say=lambda line: console.print(line, markup=False, soft_wrap=True))

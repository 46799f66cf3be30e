"""Starting the studio: who may write, which address it may listen on, and uvicorn."""

from __future__ import annotations

import asyncio
import errno
import socket
import webbrowser
from collections.abc import Callable

import uvicorn

from shared_db.client import Database
from shared_db.config import LEVELS, Settings
from shared_db.errors import ConfigError
from shared_db.studio.app import create_app
from shared_db.studio.security import Guard, host_header, is_loopback


def is_production(settings: Settings) -> bool:
    # Settings keep SHARED_DB_ENV only as what it selects, the query log's levels.
    return settings.log.levels == LEVELS["production"]


def read_only(settings: Settings, asked_read_only: bool, asked_writes: bool) -> bool:
    """Read-only when asked, and in production unless writes are asked for by name."""
    if asked_read_only and asked_writes:
        raise ConfigError("--writes", "cannot be combined with --read-only")
    return asked_read_only or (is_production(settings) and not asked_writes)


def check_host(host: str, asked_read_only: bool) -> None:
    """Another machine may reach a non-loopback address over plain HTTP, where the token can
    be read off the wire: such an address serves only a studio that cannot write."""
    if not is_loopback(host) and not asked_read_only:
        raise ConfigError("--host", f"{host} is not a loopback address; the studio serves "
                          "other machines only with --read-only (its token travels over "
                          "plain HTTP)")


def serve(settings: Settings, host: str, port: int, *, asked_read_only: bool = False,
          asked_writes: bool = False, open_browser: bool = True,
          say: Callable[[str], None] = print) -> None:
    """Serve until interrupted; ``say`` gets the one line with the address and token."""
    check_host(host, asked_read_only)
    guard = Guard.for_address(host, port, read_only(settings, asked_read_only, asked_writes))
    url = f"http://{host_header(host, port)}/?token={guard.token}"
    listener = bind(host, port)
    try:
        asyncio.run(_serve(settings, guard, listener,
                           lambda: _started(url, open_browser, say)))
    finally:
        listener.close()


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn: a port in use or an address
    this machine does not have is then a ConfigError naming the option (exit 2), where uvicorn
    logs it and exits 3, the code of an unreachable database."""
    address = host.strip("[]")  # [::1] is how a URL writes ::1, not a name to resolve
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError("--host", f"cannot listen on {host[:80]!r}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(where)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError("--port", f"{port} is in use on {host}; choose another "
                              "with --port") from None
        raise ConfigError("--host", f"cannot listen on {host}:{port}: "
                          f"{exc.strerror or exc}") from None
    return listener


def _started(url: str, open_browser: bool, say: Callable[[str], None]) -> None:
    say(f"Studio: {url}")
    if open_browser:
        webbrowser.open(url)


async def _serve(settings: Settings, guard: Guard, listener: socket.socket,
                 started: Callable[[], None]) -> None:
    # The database is opened before uvicorn starts, so an unreachable one is the one-line
    # DatabaseUnavailableError naming its cause (exit 3), not uvicorn's start-up traceback.
    async with Database(settings) as db:
        config = uvicorn.Config(create_app(settings, guard, db), log_level="warning",
                                access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        startup = server.startup

        # uvicorn binds the socket after the application's start-up and has no hook after
        # that: the line is printed once the address answers, not before.
        async def announce(sockets: object = None) -> None:
            await startup(sockets)  # type: ignore[arg-type]
            if server.started:  # the port is bound: the address works
                started()

        server.startup = announce  # type: ignore[method-assign]
        await server.serve(sockets=[listener])

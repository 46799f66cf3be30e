"""A real PgBouncer (Debian's ``pgbouncer``) in transaction pooling mode, in front of a server.

``bench.topology`` measures through it and ``tests.bouncer`` wraps it for the tests. It lives
here, not in the tests package, so the benchmarks need neither pytest nor the tests to run it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared_db.url import ConnectionSettings

MISSING = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"


def binary() -> str | None:
    """The ``pgbouncer`` executable, or ``None`` where it is not installed."""
    # Debian installs it in /usr/sbin, which an unprivileged user's PATH often lacks.
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def pgbouncer(server: ConnectionSettings, *, server_check_delay: int = 30,
              server_login_retry: int = 15,
              ignored: str = "extra_float_digits") -> Iterator[int]:
    """Start PgBouncer in front of ``server``; yields its port on 127.0.0.1.

    Clients log in as the server's user without a password (``auth_type = trust``); PgBouncer
    logs in to the server with the user and password of ``server``. ``server_check_delay`` is
    PgBouncer's own (30 s, its default): how long a server connection may idle before PgBouncer
    checks it with a query of its own before handing it out again. ``server_login_retry`` is
    too (15 s, its default): how long PgBouncer waits after a failed login to the server before
    it tries again, so a server that was down only for a restart stays out of reach that long.
    ``ignored``: its ``ignore_startup_parameters``, the startup parameters it drops instead of
    refusing the client. Raises ``RuntimeError``
    when pgbouncer is missing or does not start.
    """
    executable = binary()
    if executable is None:
        raise RuntimeError(MISSING)
    folder = Path(tempfile.mkdtemp(prefix="sdb-pgbouncer-"))
    port = _free_port()
    user = server.url.username or "postgres"
    password = str(server.url.password) if server.url.password else ""
    (folder / "users.txt").write_text(f'"{_quoted(user)}" "{_quoted(password)}"\n')
    (folder / "pgbouncer.ini").write_text(f"""\
[databases]
* = host={server.url.host} port={server.url.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
max_db_connections = 40
ignore_startup_parameters = {ignored}
server_check_delay = {server_check_delay}
server_login_retry = {server_login_retry}
admin_users = {user}
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
""")
    command = [executable, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        os.chmod(folder, 0o777)
        command[1:1] = ["-u", "postgres" if _user_exists("postgres") else "nobody"]
    # Its console output goes to a file: an unread pipe fills up and stalls PgBouncer.
    console = open(folder / "console.log", "wb")  # noqa: SIM115  (closed in finally)
    process = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = (folder / "console.log").read_text(errors="replace")
                    raise RuntimeError(f"pgbouncer did not start: {output}") from None
                time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        console.close()
        shutil.rmtree(folder, ignore_errors=True)


def client_url(server: ConnectionSettings, port: int, database: str) -> str:
    """The URL a client reaches ``database`` by through the PgBouncer on ``port`` (which trusts
    the server's user; no query)."""
    return f"postgresql://{server.url.username or 'postgres'}@127.0.0.1:{port}/{database}"


def _quoted(value: str) -> str:
    # The auth file's own escape: a double quote inside a quoted field is doubled.
    return value.replace('"', '""')


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True

"""A real PgBouncer (Debian's ``pgbouncer``) in transaction pooling mode, started for the tests.

``.ci/run`` installs the package; where it is missing the PgBouncer runs of the suite are
skipped locally with that reason, and fail under CI (``CI=true``), so CI never silently loses
them.
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

import pytest

from shared_db.url import ConnectionSettings


def _binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def pgbouncer(server: ConnectionSettings) -> Iterator[int]:
    """Start PgBouncer in front of ``server``; yields its port."""
    binary = _binary()
    if binary is None:
        message = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="sdb-pgbouncer-"))
    port = _free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
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
ignore_startup_parameters = extra_float_digits
# Check a server connection before every reuse: fault tests restart the server under it.
server_check_delay = 0
admin_users = postgres
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
""")
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        user = "postgres" if _user_exists("postgres") else "nobody"
        os.chmod(folder, 0o777)
        command[1:1] = ["-u", user]
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


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True

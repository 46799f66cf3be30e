"""``shared-db studio`` as a process: the address line first on stdout, a working sign-in
kept by the cookie, read-only under ``SHARED_DB_ENV=production``, a clean end on Ctrl-C, and
an address it cannot listen on refused by its option."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared_db.errors import ConfigError
from shared_db.studio.server import bind
from tests.conftest import DbFixture

SCRIPT = Path(sys.executable).parent / "shared-db"


@pytest.mark.parametrize(("environment", "read_only"), [("development", False),
                                                        ("production", True)])
def test_the_command_prints_the_address_first_and_serves_it(
        migrated_db: DbFixture, environment: str, read_only: bool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**migrated_db.env(), "SHARED_DB_ENV": environment}
    process = subprocess.Popen([str(SCRIPT), "studio", "--no-browser", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert re.fullmatch(rf"Studio: http://127\.0\.0\.1:{port}/\?token=[\w-]{{43}}\n", line), (
            line, process.stderr.read() if process.poll() is not None else "")
        with httpx.Client() as client:
            page = client.get(line.split(" ", 1)[1].strip(), follow_redirects=True)
            assert page.status_code == 200 and "users" in page.text
            assert ('id="read-only"' in page.text) is read_only
            assert client.get(f"http://127.0.0.1:{port}/t/users").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=15)
    # uvicorn shuts down, then ends as an interrupted process does (128 + SIGINT)
    assert process.returncode == 130 and "Traceback" not in errors, errors


def test_a_port_in_use_is_one_line_naming_the_option(migrated_db: DbFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([str(SCRIPT), "studio", "--no-browser", "--port", str(port)],
                              env=migrated_db.env(), capture_output=True, text=True,
                              timeout=60)
    # exit 2 like any refused option, not uvicorn's 3, which means an unreachable database
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip() == f"error: --port: {port} is in use on 127.0.0.1; choose " \
                                  "another with --port", done.stderr
    assert done.stdout == ""


def test_bind_refuses_an_address_it_cannot_listen_on_by_its_option() -> None:
    with pytest.raises(ConfigError, match=r"^--host: cannot listen on 'nosuch\.invalid'"):
        bind("nosuch.invalid", 5555)
    with pytest.raises(ConfigError, match=r"^--host: cannot listen on 192\.0\.2\.1:5555"):
        bind("192.0.2.1", 5555)  # TEST-NET-1: no interface of this machine has it
    if socket.has_ipv6:
        try:
            listener = bind("[::1]", 0)  # as a URL writes it, and as is_loopback accepts it
        except ConfigError as refused:
            assert "[::1]" in str(refused)  # a machine without IPv6 loopback
        else:
            assert listener.getsockname()[0] == "::1"
            listener.close()

